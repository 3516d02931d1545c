"""Two (or four) workers racing on the same due callbacks send each exactly once."""

from collections import Counter

import pytest
from django.test import override_settings

from accounts.services import callback_settings_update
from orders.callbacks import callbacks_send_due
from orders.models import CallbackDelivery
from orders.services import order_create, sms_receive
from tests.concurrency import run_at_once
from tests.factories import ApplicationFactory, ModemFactory, make_agent, make_buyer
from tests.receiver import running_receiver

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@override_settings(CALLBACK_ALLOW_PRIVATE=True, MAX_ACTIVE_ORDERS=100)
def test_racing_workers_send_each_due_delivery_exactly_once() -> None:
    agent = make_agent()
    buyer = make_buyer(balance=1_000_000)
    modems = ModemFactory.create_batch(20, reseller=agent.user)
    app = ApplicationFactory(prices={"normal": 1000})
    with running_receiver() as receiver:
        callback_settings_update(user=buyer.user, callback_url=receiver.url, set_url=True)
        for n, modem in enumerate(modems):
            order_create(buyer=buyer.user, application_id=app.pk)
            result = sms_receive(
                reseller=agent.user, uid=modem.uid, sender="INFO", text=f"Code {100000 + n}"
            )
            assert result.matched
        # The on-commit queue messages are ignored here: the workers race on the sweep.
        assert CallbackDelivery.objects.filter(status="pending").count() == 20

        sent = run_at_once([callbacks_send_due] * 4)

    assert sum(sent) == 20
    counts = Counter(receiver.webhook_ids)
    assert len(counts) == 20 and set(counts.values()) == {1}
    assert CallbackDelivery.objects.filter(status="delivered", attempts=1).count() == 20
