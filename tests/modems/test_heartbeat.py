"""POST /api/modem/heartbeat (docs/API.md, "Modem-pool agent API") and what "online" means."""

from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from modems.models import Modem
from tests.agent_api import SEED_BODY, ago, beat, heartbeat, stock
from tests.factories import Agent, ApplicationFactory, ModemFactory, make_agent

pytestmark = pytest.mark.django_db


# --- The heartbeat ---------------------------------------------------------------------------


def test_seed_body_marks_the_modem_seen_now_and_online(client: APIClient, agent: Agent) -> None:
    ModemFactory(
        reseller=agent.user, uid="COM3", signal=80, can_order=False, last_heartbeat_at=None
    )
    com3 = Modem.objects.get(uid="COM3")
    assert not com3.is_online
    assert not Modem.objects.online().filter(pk=com3.pk).exists()
    before = timezone.now()

    response = heartbeat(client, agent, SEED_BODY)

    after = timezone.now()
    assert response.status_code == 200
    assert response.json() == {"updated": 1, "unknown": []}
    com3.refresh_from_db()
    assert before <= com3.last_heartbeat_at <= after
    assert com3.signal == 75
    assert com3.can_order is True
    assert com3.is_online
    assert Modem.objects.online().filter(pk=com3.pk).exists()


def test_a_heartbeat_brings_an_offline_modem_back_online(client: APIClient, agent: Agent) -> None:
    com3 = ModemFactory(reseller=agent.user, uid="COM3", last_heartbeat_at=ago(3600))
    assert not com3.is_online

    response = heartbeat(client, agent, SEED_BODY)

    assert response.json() == {"updated": 1, "unknown": []}
    com3.refresh_from_db()
    assert com3.is_online
    assert list(Modem.objects.online()) == [com3]


def test_uids_never_synced_are_listed_as_unknown(client: APIClient, agent: Agent) -> None:
    ModemFactory(reseller=agent.user, uid="COM3", last_heartbeat_at=None)

    response = beat(
        client,
        agent,
        {"uid": "COM99", "signal": 10},
        {"uid": "COM3", "signal": 75, "can_order": True},
        {"uid": "COM100"},
    )

    assert response.status_code == 200
    body = response.json()
    assert body["updated"] == 1
    assert sorted(body["unknown"]) == ["COM100", "COM99"]
    assert Modem.objects.count() == 1
    assert Modem.objects.get(uid="COM3").is_online


def test_another_resellers_uid_is_unknown_and_untouched(client: APIClient, agent: Agent) -> None:
    other = make_agent()
    old = ago(3600)
    theirs = ModemFactory(
        reseller=other.user, uid="COM7", signal=10, can_order=False, last_heartbeat_at=old
    )

    response = beat(client, agent, {"uid": "COM7", "signal": 99, "can_order": True})

    assert response.status_code == 200
    assert response.json() == {"updated": 0, "unknown": ["COM7"]}
    theirs.refresh_from_db()
    assert (theirs.last_heartbeat_at, theirs.signal, theirs.can_order) == (old, 10, False)


def test_a_heartbeat_touches_only_the_senders_modem_when_two_resellers_share_a_uid(
    client: APIClient, agent: Agent
) -> None:
    other = make_agent()
    old = ago(3600)
    mine = ModemFactory(reseller=agent.user, uid="COM3", signal=10, last_heartbeat_at=old)
    theirs = ModemFactory(reseller=other.user, uid="COM3", signal=10, last_heartbeat_at=old)

    response = heartbeat(client, agent, SEED_BODY)

    assert response.json() == {"updated": 1, "unknown": []}
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.is_online and mine.signal == 75
    assert not theirs.is_online and theirs.signal == 10
    assert theirs.last_heartbeat_at == old


def test_omitted_signal_and_can_order_keep_their_stored_values(
    client: APIClient, agent: Agent
) -> None:
    com3 = ModemFactory(
        reseller=agent.user, uid="COM3", signal=33, can_order=False, last_heartbeat_at=None
    )

    response = beat(client, agent, {"uid": "COM3"})

    assert response.json() == {"updated": 1, "unknown": []}
    com3.refresh_from_db()
    assert (com3.signal, com3.can_order) == (33, False)
    assert com3.is_online


def test_a_heartbeat_older_than_the_online_window_is_offline(agent: Agent) -> None:
    stale = ModemFactory(reseller=agent.user, last_heartbeat_at=ago(121))
    fresh = ModemFactory(reseller=agent.user, last_heartbeat_at=ago(100))
    never = ModemFactory(reseller=agent.user, last_heartbeat_at=None)

    assert not stale.is_online
    assert fresh.is_online
    assert not never.is_online
    assert list(Modem.objects.online()) == [fresh]


@override_settings(MODEM_ONLINE_SECONDS=600)
def test_the_online_window_follows_the_setting(agent: Agent) -> None:
    recent = ModemFactory(reseller=agent.user, last_heartbeat_at=ago(500))
    stale = ModemFactory(reseller=agent.user, last_heartbeat_at=ago(700))

    assert recent.is_online
    assert not stale.is_online
    assert list(Modem.objects.online()) == [recent]


def test_can_order_false_makes_the_modem_not_orderable(client: APIClient, agent: Agent) -> None:
    app = ApplicationFactory(prices={"normal": 3500, "promo": 2800})
    ModemFactory(reseller=agent.user, uid="COM3", mapping="promo")
    assert stock(client, app, "promo") == 1

    response = beat(client, agent, {"uid": "COM3", "signal": 75, "can_order": False})

    assert response.json() == {"updated": 1, "unknown": []}
    com3 = Modem.objects.get(uid="COM3")
    assert com3.is_online
    assert com3.can_order is False
    assert stock(client, app, "promo") == 0

    beat(client, agent, {"uid": "COM3", "can_order": True})

    assert stock(client, app, "promo") == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"uid": "COM4", "signal": "x"},
        {"uid": "COM4", "signal": "75"},
        {"uid": "COM4", "signal": 101},
        {"uid": "COM4", "signal": -1},
        {"uid": "COM4", "signal": True},
        {"uid": "COM4", "can_order": "yes"},
        {"uid": "COM4", "can_order": 1},
        {"uid": "COM4", "can_order": "true"},
        {"signal": 75},
        {"uid": ""},
        {"uid": 4},
        "COM4",
        None,
    ],
    ids=repr,
)
def test_a_bad_item_refuses_the_whole_heartbeat_and_updates_nothing(
    client: APIClient, agent: Agent, bad: Any
) -> None:
    old = ago(3600)
    com3 = ModemFactory(
        reseller=agent.user, uid="COM3", signal=10, can_order=False, last_heartbeat_at=old
    )
    com4 = ModemFactory(
        reseller=agent.user, uid="COM4", signal=10, can_order=False, last_heartbeat_at=old
    )

    response = beat(client, agent, {"uid": "COM3", "signal": 75, "can_order": True}, bad)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    for modem in (com3, com4):
        modem.refresh_from_db()
        assert (modem.last_heartbeat_at, modem.signal, modem.can_order) == (old, 10, False)


@pytest.mark.parametrize(
    "body",
    [[SEED_BODY["modems"][0]], "COM3", None, {}, {"modems": None}, {"modems": {"uid": "COM3"}}],
    ids=repr,
)
def test_a_body_without_a_list_of_modems_is_refused(
    client: APIClient, agent: Agent, body: Any
) -> None:
    old = ago(3600)
    com3 = ModemFactory(reseller=agent.user, uid="COM3", last_heartbeat_at=old)

    response = heartbeat(client, agent, body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    com3.refresh_from_db()
    assert com3.last_heartbeat_at == old


@override_settings(MODEM_BATCH_MAX=5)
def test_a_heartbeat_batch_over_the_limit_is_refused_and_updates_nothing(
    client: APIClient, agent: Agent
) -> None:
    old = ago(3600)
    modems = [
        ModemFactory(reseller=agent.user, uid=f"COM{i}", last_heartbeat_at=old) for i in range(6)
    ]

    response = beat(client, agent, *({"uid": m.uid, "signal": 50} for m in modems))

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert Modem.objects.filter(last_heartbeat_at=old).count() == 6

    response = beat(client, agent, *({"uid": m.uid, "signal": 50} for m in modems[:5]))

    assert response.json() == {"updated": 5, "unknown": []}


def test_heartbeat_without_an_agent_key_is_refused(client: APIClient, agent: Agent) -> None:
    com3 = ModemFactory(reseller=agent.user, uid="COM3", last_heartbeat_at=None)

    response = client.post("/api/modem/heartbeat", SEED_BODY, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_agent_key"
    com3.refresh_from_db()
    assert com3.last_heartbeat_at is None


def test_a_heartbeat_costs_the_same_queries_for_one_modem_and_for_fifty(
    client: APIClient, agent: Agent
) -> None:
    old = ago(3600)
    for i in range(50):
        ModemFactory(reseller=agent.user, uid=f"COM{i}", last_heartbeat_at=old)
    beat(client, agent, {"uid": "COM0"})  # warm-up: the same path, nothing measured

    with CaptureQueriesContext(connection) as one:
        response_one = beat(client, agent, {"uid": "COM1", "signal": 60, "can_order": True})
    with CaptureQueriesContext(connection) as fifty:
        response_fifty = beat(
            client, agent, *({"uid": f"COM{i}", "signal": i, "can_order": True} for i in range(50))
        )

    assert response_one.json() == {"updated": 1, "unknown": []}
    assert response_fifty.json() == {"updated": 50, "unknown": []}
    assert len(fifty) == len(one), [q["sql"] for q in fifty.captured_queries]
    assert Modem.objects.filter(last_heartbeat_at=old).count() == 0
    assert Modem.objects.get(uid="COM42").signal == 42
