"""POST /api/modem/sync (docs/API.md, "Modem-pool agent API"): create or update the reseller's
modems by uid, idempotently; item-level rejections skip only that item; a malformed or
oversized batch changes nothing."""

import json
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.response import Response
from rest_framework.test import APIClient

from modems.models import Modem
from tests.factories import Agent, ModemFactory, make_agent, make_buyer

pytestmark = pytest.mark.django_db

SEED_BODY = {
    "modems": [
        {
            "uid": "COM3",
            "phone_number": "628111",
            "provider": "Telkomsel",
            "signal": 80,
            "mapping": "normal",
        }
    ]
}


def sync(client: APIClient, agent: Agent, body: Any) -> Response:
    return client.post(
        "/api/modem/sync", data=json.dumps(body), content_type="application/json", **agent.headers
    )


def sync_items(client: APIClient, agent: Agent, *items: Any) -> Response:
    return sync(client, agent, {"modems": list(items)})


def modem(agent: Agent, uid: str) -> Modem:
    return Modem.objects.get(reseller=agent.user, uid=uid)


def stored(agent: Agent) -> dict[str, str | None]:
    return dict(
        Modem.objects.filter(reseller=agent.user).values_list("uid", "phone_number").order_by("uid")
    )


def test_seed_body_creates_the_modem_and_answers_exactly_as_the_seed(
    client: APIClient, agent: Agent
) -> None:
    response = sync(client, agent, SEED_BODY)

    assert response.status_code == 200
    assert response.json() == {"synced": 1, "created": 1, "updated": 0, "errors": []}
    com3 = modem(agent, "COM3")
    assert com3.phone_number == "628111"
    assert com3.provider == "Telkomsel"
    assert com3.signal == 80
    assert com3.mapping == "normal"
    assert Modem.objects.count() == 1


def test_the_same_body_twice_creates_and_updates_nothing(client: APIClient, agent: Agent) -> None:
    sync(client, agent, SEED_BODY)
    before = modem(agent, "COM3")

    response = sync(client, agent, SEED_BODY)

    assert response.status_code == 200
    assert response.json() == {"synced": 1, "created": 0, "updated": 0, "errors": []}
    after = modem(agent, "COM3")
    assert after.pk == before.pk
    assert after.updated_at == before.updated_at
    assert Modem.objects.count() == 1


def test_a_change_of_signal_counts_as_one_update(client: APIClient, agent: Agent) -> None:
    sync(client, agent, SEED_BODY)

    response = sync_items(client, agent, {**SEED_BODY["modems"][0], "signal": 55})

    assert response.status_code == 200
    assert response.json() == {"synced": 1, "created": 0, "updated": 1, "errors": []}
    assert modem(agent, "COM3").signal == 55


def test_a_change_of_mapping_and_provider_counts_as_one_update(
    client: APIClient, agent: Agent
) -> None:
    sync(client, agent, SEED_BODY)

    response = sync_items(
        client, agent, {**SEED_BODY["modems"][0], "mapping": "promo", "provider": "Indosat"}
    )

    assert response.json() == {"synced": 1, "created": 0, "updated": 1, "errors": []}
    com3 = modem(agent, "COM3")
    assert (com3.mapping, com3.provider) == ("promo", "Indosat")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+62 811-1234-567", "628111234567"),
        ("0811 1234 567", "628111234567"),
        ("(0811) 1234.567", "628111234567"),
        ("628111", "628111"),
    ],
)
def test_the_phone_number_is_normalised_when_stored(
    client: APIClient, agent: Agent, raw: str, expected: str
) -> None:
    response = sync_items(client, agent, {"uid": "COM3", "phone_number": raw})

    assert response.json() == {"synced": 1, "created": 1, "updated": 0, "errors": []}
    assert modem(agent, "COM3").phone_number == expected


def test_the_same_number_written_differently_is_no_update(client: APIClient, agent: Agent) -> None:
    sync_items(client, agent, {"uid": "COM3", "phone_number": "628111234567"})

    response = sync_items(client, agent, {"uid": "COM3", "phone_number": "0811-1234-567"})

    assert response.json() == {"synced": 1, "created": 0, "updated": 0, "errors": []}


def test_a_number_moved_to_another_uid_of_the_same_reseller_moves_with_it(
    client: APIClient, agent: Agent
) -> None:
    sync(client, agent, SEED_BODY)

    response = sync_items(client, agent, {"uid": "COM4", "phone_number": "628111"})

    assert response.status_code == 200
    body = response.json()
    assert body["errors"] == []
    assert (body["synced"], body["created"]) == (1, 1)
    assert stored(agent) == {"COM3": None, "COM4": "628111"}


def test_a_number_moved_between_two_existing_uids_moves_with_it(
    client: APIClient, agent: Agent
) -> None:
    sync_items(
        client,
        agent,
        {"uid": "COM3", "phone_number": "628111"},
        {"uid": "COM4", "phone_number": "628222"},
    )

    response = sync_items(client, agent, {"uid": "COM4", "phone_number": "628111"})

    body = response.json()
    assert body["errors"] == []
    assert (body["synced"], body["created"], body["updated"]) == (1, 0, 1)
    assert stored(agent) == {"COM3": None, "COM4": "628111"}


def test_two_uids_can_swap_their_numbers_in_one_batch(client: APIClient, agent: Agent) -> None:
    sync_items(
        client,
        agent,
        {"uid": "COM3", "phone_number": "628111"},
        {"uid": "COM4", "phone_number": "628222"},
    )

    response = sync_items(
        client,
        agent,
        {"uid": "COM3", "phone_number": "628222"},
        {"uid": "COM4", "phone_number": "628111"},
    )

    assert response.status_code == 200
    assert response.json() == {"synced": 2, "created": 0, "updated": 2, "errors": []}
    assert stored(agent) == {"COM3": "628222", "COM4": "628111"}


def test_a_number_held_by_another_resellers_modem_is_a_conflict_for_that_item_only(
    client: APIClient, agent: Agent
) -> None:
    other = make_agent()
    ModemFactory(reseller=other.user, uid="COM9", phone_number="628999")

    response = sync_items(
        client,
        agent,
        {"uid": "COM3", "phone_number": "628111"},
        {"uid": "COM4", "phone_number": "628999", "signal": 50},
        {"uid": "COM5", "phone_number": "628555"},
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["synced"], body["created"], body["updated"]) == (2, 2, 0)
    assert len(body["errors"]) == 1
    error = body["errors"][0]
    assert error["index"] == 1
    assert error["uid"] == "COM4"
    assert error["code"] == "phone_number_conflict"
    assert isinstance(error["message"], str) and error["message"]
    assert stored(agent) == {"COM3": "628111", "COM5": "628555"}
    assert modem(other, "COM9").phone_number == "628999"


def test_an_existing_modem_claiming_another_resellers_number_keeps_its_own(
    client: APIClient, agent: Agent
) -> None:
    other = make_agent()
    ModemFactory(reseller=other.user, uid="COM9", phone_number="628999")
    sync(client, agent, SEED_BODY)

    response = sync_items(client, agent, {"uid": "COM3", "phone_number": "+62 8999", "signal": 5})

    body = response.json()
    assert body["synced"] == 0
    assert [(e["index"], e["uid"], e["code"]) for e in body["errors"]] == [
        (0, "COM3", "phone_number_conflict")
    ]
    com3 = modem(agent, "COM3")
    assert (com3.phone_number, com3.signal) == ("628111", 80)
    assert modem(other, "COM9").phone_number == "628999"


def test_a_uid_repeated_in_one_batch_is_rejected_for_the_later_item(
    client: APIClient, agent: Agent
) -> None:
    response = sync_items(
        client,
        agent,
        {"uid": "COM3", "phone_number": "628111", "signal": 80},
        {"uid": "COM4", "phone_number": "628444"},
        {"uid": "COM3", "phone_number": "628333", "signal": 20},
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["synced"], body["created"], body["updated"]) == (2, 2, 0)
    assert [(e["index"], e["uid"], e["code"]) for e in body["errors"]] == [
        (2, "COM3", "duplicate_uid")
    ]
    com3 = modem(agent, "COM3")
    assert (com3.phone_number, com3.signal) == ("628111", 80)
    assert not Modem.objects.filter(phone_number="628333").exists()


@pytest.mark.parametrize(
    ("bad", "uid"),
    [
        ({"phone_number": "628777"}, None),
        ({"uid": "", "phone_number": "628777"}, None),
        ({"uid": 3, "phone_number": "628777"}, None),
        ({"uid": "COMX", "signal": 101}, "COMX"),
        ({"uid": "COMX", "signal": -1}, "COMX"),
        ({"uid": "COMX", "signal": "80"}, "COMX"),
        ({"uid": "COMX", "signal": True}, "COMX"),
        ({"uid": "COMX", "signal": 80.5}, "COMX"),
        ({"uid": "COMX", "mapping": "gold"}, "COMX"),
        ({"uid": "COMX", "phone_number": "abc"}, "COMX"),
        ({"uid": "COMX", "phone_number": "12"}, "COMX"),
        ({"uid": "COMX", "phone_number": 628777}, "COMX"),
        ({"uid": "COMX", "provider": 7}, "COMX"),
        ({"uid": "COMX", "provider": "x" * 65}, "COMX"),
        ({"uid": "x" * 65}, None),
        ("COMX", None),
        (None, None),
        (["COMX"], None),
    ],
    ids=repr,
)
def test_a_bad_item_is_rejected_alone_and_the_rest_applied(
    client: APIClient, agent: Agent, bad: Any, uid: str | None
) -> None:
    response = sync_items(
        client,
        agent,
        {"uid": "COM3", "phone_number": "628111"},
        bad,
        {"uid": "COM5", "phone_number": "628555"},
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["synced"], body["created"], body["updated"]) == (2, 2, 0)
    assert len(body["errors"]) == 1
    error = body["errors"][0]
    assert (error["index"], error["code"]) == (1, "invalid_request")
    if uid is not None:
        assert error["uid"] == uid
    assert isinstance(error["message"], str) and error["message"]
    assert stored(agent) == {"COM3": "628111", "COM5": "628555"}


def test_a_bad_item_does_not_change_the_stored_modem(client: APIClient, agent: Agent) -> None:
    sync(client, agent, SEED_BODY)

    response = sync_items(client, agent, {"uid": "COM3", "signal": 20, "mapping": "gold"})

    assert response.json()["synced"] == 0
    assert response.json()["errors"][0]["code"] == "invalid_request"
    com3 = modem(agent, "COM3")
    assert (com3.signal, com3.mapping) == (80, "normal")


def test_uid_is_unique_per_reseller_not_globally(client: APIClient, agent: Agent) -> None:
    other = make_agent()
    sync(client, agent, SEED_BODY)

    response = sync_items(
        client, other, {"uid": "COM3", "phone_number": "628222", "mapping": "promo"}
    )

    assert response.json() == {"synced": 1, "created": 1, "updated": 0, "errors": []}
    assert Modem.objects.filter(uid="COM3").count() == 2
    mine = modem(agent, "COM3")
    assert (mine.phone_number, mine.mapping) == ("628111", "normal")
    theirs = modem(other, "COM3")
    assert (theirs.phone_number, theirs.mapping) == ("628222", "promo")


def test_a_sync_never_touches_another_resellers_modem_of_the_same_uid(
    client: APIClient, agent: Agent
) -> None:
    other = make_agent()
    ModemFactory(reseller=other.user, uid="COM3", phone_number="628222", signal=10)

    response = sync(client, agent, SEED_BODY)

    assert response.json() == {"synced": 1, "created": 1, "updated": 0, "errors": []}
    theirs = modem(other, "COM3")
    assert (theirs.phone_number, theirs.signal) == ("628222", 10)


@pytest.mark.parametrize(
    "body",
    [
        [SEED_BODY["modems"][0]],
        "COM3",
        42,
        None,
        {},
        {"modem": SEED_BODY["modems"]},
        {"modems": None},
        {"modems": SEED_BODY["modems"][0]},
        {"modems": "COM3"},
        {"modems": 1},
    ],
    ids=repr,
)
def test_a_body_without_a_list_of_modems_is_refused_and_writes_nothing(
    client: APIClient, agent: Agent, body: Any
) -> None:
    response = sync(client, agent, body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert Modem.objects.count() == 0


@pytest.mark.parametrize("raw", ["{", '{"modems": [', "not json", '{"modems": [NaN]}'])
def test_malformed_json_is_refused_and_writes_nothing(
    client: APIClient, agent: Agent, raw: str
) -> None:
    response = client.post(
        "/api/modem/sync", data=raw, content_type="application/json", **agent.headers
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert Modem.objects.count() == 0


@override_settings(MODEM_BATCH_MAX=5)
def test_a_batch_over_the_limit_is_refused_and_writes_nothing(
    client: APIClient, agent: Agent
) -> None:
    items = [{"uid": f"COM{i}", "phone_number": f"62811000{i}"} for i in range(6)]

    response = sync_items(client, agent, *items)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert Modem.objects.count() == 0


@override_settings(MODEM_BATCH_MAX=5)
def test_a_batch_at_the_limit_is_applied(client: APIClient, agent: Agent) -> None:
    items = [{"uid": f"COM{i}", "phone_number": f"62811000{i}"} for i in range(5)]

    response = sync_items(client, agent, *items)

    assert response.status_code == 200
    assert response.json() == {"synced": 5, "created": 5, "updated": 0, "errors": []}
    assert Modem.objects.filter(reseller=agent.user).count() == 5


def test_an_empty_list_syncs_nothing(client: APIClient, agent: Agent) -> None:
    response = sync_items(client, agent)

    assert response.status_code == 200
    assert response.json() == {"synced": 0, "created": 0, "updated": 0, "errors": []}


def test_omitted_fields_keep_their_stored_values(client: APIClient, agent: Agent) -> None:
    sync(client, agent, SEED_BODY)

    response = sync_items(client, agent, {"uid": "COM3", "signal": 42})

    assert response.json() == {"synced": 1, "created": 0, "updated": 1, "errors": []}
    com3 = modem(agent, "COM3")
    assert com3.phone_number == "628111"
    assert com3.provider == "Telkomsel"
    assert com3.mapping == "normal"
    assert com3.signal == 42


def test_an_item_with_only_the_uid_changes_nothing(client: APIClient, agent: Agent) -> None:
    sync(client, agent, SEED_BODY)

    response = sync_items(client, agent, {"uid": "COM3"})

    assert response.json() == {"synced": 1, "created": 0, "updated": 0, "errors": []}
    com3 = modem(agent, "COM3")
    assert (com3.phone_number, com3.provider, com3.signal, com3.mapping) == (
        "628111",
        "Telkomsel",
        80,
        "normal",
    )


def test_sync_without_an_agent_key_is_refused(client: APIClient, agent: Agent) -> None:
    response = client.post("/api/modem/sync", SEED_BODY, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_agent_key"
    assert Modem.objects.count() == 0


def test_sync_with_a_buyer_api_key_as_agent_key_is_refused(client: APIClient) -> None:
    buyer = make_buyer()
    response = client.post("/api/modem/sync", SEED_BODY, format="json", HTTP_X_AGENT_KEY=buyer.key)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_agent_key"
    assert Modem.objects.count() == 0
