"""Contract fuzzing: schemathesis generates requests for every operation of the OpenAPI
schema that /api/schema/ serves (valid ones and deliberately invalid ones), sends them
in-process to the real WSGI application with a buyer's and an agent's keys, and checks
each answer: never a 5xx, only documented status codes, and a body that matches the
documented schema for that status.

The world is small but real: two applications with prices, a reseller with online
modems, a buyer with money, a callback URL, and orders in every state, so that the
fuzzer reaches the 200/201 answers too (small generated ids are mapped onto real ones).

Bounded for CI: FUZZ_EXAMPLES per operation (30 by default; ZEROTP_FUZZ_EXAMPLES raises
it), a fixed seed (ZEROTP_FUZZ_SEED changes it), no example database on disk."""

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from accounts.services import callback_settings_update
from orders.models import CallbackDelivery, Order
from orders.services import order_cancel, order_create, sms_receive
from tests.factories import Agent, ApplicationFactory, Buyer, ModemFactory, make_agent, make_buyer
from tests.reliability.conftest import NetworkLog, assert_books_sound
from zerotp.wsgi import application

FUZZ_EXAMPLES = int(os.environ.get("ZEROTP_FUZZ_EXAMPLES", "30"))
FUZZ_SEED = int(os.environ.get("ZEROTP_FUZZ_SEED", "20261127"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Generated ids below this are mapped onto real ones; larger ones stay unknown (404).
AIMED = 1000


def served_schema() -> dict[str, Any]:
    """The document /api/schema/?format=json serves, built the way its view builds it
    (loading it over HTTP at import time would touch the real database's cache table)."""
    generator = SchemaGenerator()
    raw = OpenApiJsonRenderer().render(generator.get_schema(request=None, public=True))
    return json.loads(raw)


CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": FUZZ_SEED,
        "suppress-health-check": ["all"],
        "generation": {
            "mode": "all",
            "max-examples": FUZZ_EXAMPLES,
            "database": "none",
            "allow-x00": True,
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
    }
)
schema = schemathesis.openapi.from_dict(served_schema(), config=CONFIG)
schema.app = application


class World:
    """What the fuzzer's requests act on; ids the fuzzer generates are mapped onto it."""

    def __init__(self) -> None:
        self.agent: Agent = make_agent()
        self.buyer: Buyer = make_buyer(balance=10_000_000)
        whatsapp = ApplicationFactory(
            prices={"normal": 3500, "promo": 2800}, sender_patterns="whatsapp"
        )
        other = ApplicationFactory(prices={"normal": 5000, "special": 9000})
        ModemFactory.create_batch(6, reseller=self.agent.user)
        ModemFactory(reseller=self.agent.user, mapping="promo")
        # Saved through the normal check; the resolver says it is public, and no socket
        # can connect, so every send is a quick connection error.
        callback_settings_update(
            user=self.buyer.user, callback_url="https://hooks.example.com/otp", set_url=True
        )
        self.applications = [whatsapp.pk, other.pk]
        orders = [
            order_create(buyer=self.buyer.user, application_id=whatsapp.pk).order.pk
            for _ in range(3)
        ]
        first = Order.objects.select_related("modem").get(pk=orders[0])
        result = sms_receive(
            reseller=self.agent.user,
            uid=first.modem.uid,
            sender="WhatsApp",
            text="Your code is 123-456",
        )
        assert result.matched
        order_cancel(buyer=self.buyer.user, order_id=orders[1])
        self.orders = orders
        self.deliveries = list(CallbackDelivery.objects.values_list("pk", flat=True))
        assert self.deliveries
        self.uids = [m.uid for m in self.agent.user.modems.all()]

    def headers_for(self, case: Any) -> dict[str, str]:
        headers = {"X-API-KEY": self.buyer.key, "X-AGENT-KEY": self.agent.key}
        if case.method == "POST" and case.path == "/api/v1/orders":
            headers["Idempotency-Key"] = str(uuid.uuid4())
        return headers

    def aim(self, case: Any) -> None:
        """Small generated ids become real ones, so that success answers are checked too."""
        params = case.path_parameters or {}
        for name, real in (("order_id", self.orders), ("delivery_id", self.deliveries)):
            if (n := _small(params.get(name))) is not None:
                params[name] = real[n % len(real)]
        body = case.body
        if not isinstance(body, dict):
            return
        if (n := _small(body.get("application_id"))) is not None:
            body["application_id"] = self.applications[n % len(self.applications)]
        items = body.get("modems") if isinstance(body.get("modems"), list) else [body]
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("uid"), str) and len(item["uid"]) < 3:
                item["uid"] = self.uids[sum(map(ord, item["uid"])) % len(self.uids)]


def _small(value: Any) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < AIMED:
        return value
    return None


@pytest.fixture
def world(db: None, no_network: NetworkLog, wsgi_in_test_transaction: None) -> Iterator[World]:
    yield World()
    # Once every generated request of the operation has run: nothing lost, nothing doubled.
    assert_books_sound()


@schema.parametrize()
def test_every_operation_answers_within_its_contract(case: Any, world: World) -> None:
    world.aim(case)
    case.call_and_validate(headers=world.headers_for(case), checks=CHECKS)


def test_the_fuzzed_schema_is_the_served_one(db: None) -> None:
    response = Client().get("/api/schema/?format=json")

    assert response.status_code == 200
    assert json.loads(response.content) == served_schema()
