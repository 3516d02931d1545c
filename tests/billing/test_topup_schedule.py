"""Unpaid top-ups expire by the job queue's schedule; a payment arriving later still pays."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import Schedule

from billing.models import TopUp
from billing.services import wallet_balance
from billing.topups import topup_create, topup_pay
from tests.factories import make_buyer

pytestmark = pytest.mark.django_db


def test_the_schedule_runs_the_task_every_ten_minutes() -> None:
    schedule = Schedule.objects.get(func="billing.tasks.expire_topups")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        Schedule.MINUTES,
        10,
        -1,
    )
    task = import_string(schedule.func)

    buyer = make_buyer()
    due = topup_create(user=buyer.user, amount=20_000, provider="manual")
    waiting = topup_create(user=buyer.user, amount=30_000, provider="manual")
    TopUp.objects.filter(pk=due.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert task() == 1
    assert TopUp.objects.get(pk=due.pk).status == TopUp.Status.EXPIRED
    assert TopUp.objects.get(pk=waiting.pk).status == TopUp.Status.PENDING
    assert topup_pay(topup_id=due.pk)  # the transfer came late: it still pays
    assert wallet_balance(buyer.user) == due.payable
