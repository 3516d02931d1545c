"""`Modem.online`: heartbeats set it, a job clears it once they stop, and the order pick
keeps to the modems it marks (PostgreSQL: the pick walks no silent modem)."""

import json
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils.module_loading import import_string
from django_q.models import Schedule

from modems.models import Modem
from modems.services import HeartbeatItem, modems_heartbeat
from orders.services import order_create
from orders.statements.free_modems import free_modems
from tests.factories import ApplicationFactory, ModemFactory, make_agent, make_buyer, offline_since

pytestmark = pytest.mark.django_db

mark_offline = import_string("modems.tasks.mark_offline")


def test_the_schedule_runs_the_job_every_minute() -> None:
    schedule = Schedule.objects.get(func="modems.tasks.mark_offline")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        Schedule.MINUTES,
        1,
        -1,
    )


def test_the_job_marks_only_modems_whose_heartbeats_stopped() -> None:
    reseller = make_agent().user
    silent = ModemFactory(reseller=reseller)
    Modem.objects.filter(pk=silent.pk).update(
        last_heartbeat_at=offline_since(settings.MODEM_ONLINE_SECONDS + 1)
    )
    never = ModemFactory(reseller=reseller, last_heartbeat_at=None)
    Modem.objects.filter(pk=never.pk).update(online=True)  # as it could have been left
    beating = ModemFactory(reseller=reseller)

    assert mark_offline() == 2
    assert mark_offline() == 0  # safe to run twice

    online = dict(Modem.objects.values_list("pk", "online"))
    assert online == {silent.pk: False, never.pk: False, beating.pk: True}


def test_a_heartbeat_brings_a_modem_back_and_it_can_be_ordered_again() -> None:
    agent = make_agent()
    modem = ModemFactory(reseller=agent.user, last_heartbeat_at=offline_since(3600))
    assert not modem.online
    app = ApplicationFactory(prices={"normal": 1000})
    buyer = make_buyer(balance=10_000)

    modems_heartbeat(reseller=agent.user, items=[HeartbeatItem(modem.uid, 70, True)])

    modem.refresh_from_db()
    assert modem.online and modem.is_online
    assert order_create(buyer=buyer.user, application_id=app.pk).order.modem_id == modem.pk


def test_a_modem_marked_online_but_silent_too_long_is_never_handed_out() -> None:
    """The job runs once a minute: until it does, the heartbeat's age still decides."""
    app = ApplicationFactory(prices={"normal": 1000})
    modem = ModemFactory(reseller=make_agent().user)
    Modem.objects.filter(pk=modem.pk).update(
        last_heartbeat_at=offline_since(settings.MODEM_ONLINE_SECONDS + 1)
    )
    buyer = make_buyer(balance=10_000)

    with pytest.raises(Exception, match="No normal number is available"):
        order_create(buyer=buyer.user, application_id=app.pk)


def _modem_scans(plan: Any) -> list[dict[str, Any]]:
    found = []
    if plan.get("Relation Name") == Modem._meta.db_table:
        found.append(plan)
    for child in plan.get("Plans", []):
        found += _modem_scans(child)
    return found


@pytest.mark.postgres(why="the pick's plan is PostgreSQL's")
def test_the_pick_walks_no_silent_modem_ahead_of_the_online_ones() -> None:
    """Half the pool's modems went silent and come first in the pick's order (by id): the
    pick reads the one online modem from the index and nothing else."""
    app = ApplicationFactory(prices={"normal": 1000})
    agent = make_agent()
    ModemFactory.create_batch(200, reseller=agent.user, last_heartbeat_at=offline_since(3600))
    ModemFactory.create_batch(200, reseller=agent.user)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE modems_modem")
        params = {
            "application": app.pk,
            "operator": "normal",
            "online_since": offline_since(settings.MODEM_ONLINE_SECONDS),
        }
        free = free_modems("normal", settings.MODEM_ONLINE_SECONDS, (0, 1))
        sql = f"SELECT m.id {free} ORDER BY m.id LIMIT 1"
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)
    scans = _modem_scans(plan[0]["Plan"])

    assert scans and all(scan["Node Type"].startswith("Index") for scan in scans), scans
    assert sum(scan["Actual Rows"] for scan in scans) == 1
    assert sum(scan.get("Rows Removed by Filter", 0) for scan in scans) == 0
