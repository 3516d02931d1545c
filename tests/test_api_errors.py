"""The error envelope everywhere under /api/: unknown paths, wrong methods, malformed
bodies of every kind, oversize bodies, lenient Content-Type and Accept handling, and the
OpenAPI schema and Swagger UI that document it."""

import json
import re
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import override_settings
from rest_framework.test import APIClient

from billing.models import LedgerTransaction
from billing.services import wallet_balance
from orders.models import Application, Order
from tests.factories import Agent, ApplicationFactory, Buyer, ModemFactory

ORDERS = "/api/v1/orders"


def assert_envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].split(";")[0] == "application/json"
    body = json.loads(response.content)
    assert set(body) == {"error"}
    error = body["error"]
    assert {"code", "message"} <= set(error) <= {"code", "message", "fields"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error


def raw_post(
    client: APIClient, path: str, data: bytes | str, content_type: str, **headers: str
) -> Any:
    return client.generic("POST", path, data, content_type=content_type, **headers)


@pytest.fixture
def app(db: None) -> Application:
    return ApplicationFactory(prices={"normal": 3500})


@pytest.fixture
def stocked(app: Application, agent: Agent) -> Application:
    ModemFactory(reseller=agent.user)
    return app


# --- unknown paths and wrong methods -------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/",
        "/api/nope",
        "/api/v1/nope",
        "/api/v2/orders",
        "/api/v1/orders/abc",
        "/api/v1/orders/-1",
        "/api/v1/orders/1/refund",
        "/api/modem/nope",
        "/api/v1/services/",
    ],
)
def test_unknown_path_under_api_is_a_json_404(client: APIClient, buyer: Buyer, path: str) -> None:
    assert_envelope(client.get(path, **buyer.headers), 404, "not_found")
    assert_envelope(client.post(path, {}, format="json", **buyer.headers), 404, "not_found")


def test_wrong_method_on_the_agent_api_is_a_json_405(client: APIClient, agent: Agent) -> None:
    response = client.get("/api/modem/sync", **agent.headers)

    assert_envelope(response, 405, "method_not_allowed")


def test_wrong_method_on_the_buyer_api_is_a_json_405(client: APIClient, buyer: Buyer) -> None:
    response = client.delete(ORDERS, **buyer.headers)

    assert_envelope(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"] and "POST" in response["Allow"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/services"),
        ("PUT", "/api/v1/orders"),
        ("PATCH", "/api/v1/balance"),
        ("DELETE", "/api/v1/orders/1"),
        ("GET", "/api/v1/orders/1/cancel"),
        ("GET", "/api/v1/orders/1/finish"),
        ("GET", "/api/modem/heartbeat"),
        ("PUT", "/api/modem/inbound-sms"),
    ],
)
def test_every_wrong_method_is_a_json_405(
    client: APIClient, buyer: Buyer, agent: Agent, method: str, path: str
) -> None:
    response = client.generic(
        method, path, "{}", content_type="application/json", **buyer.headers, **agent.headers
    )

    assert_envelope(response, 405, "method_not_allowed")


def test_missing_key_is_a_json_401(client: APIClient, db: None) -> None:
    assert_envelope(client.get(ORDERS), 401, "invalid_api_key")
    assert_envelope(
        client.post("/api/modem/sync", {"modems": []}, format="json"), 401, "invalid_agent_key"
    )


# --- malformed bodies -------------------------------------------------------------------------


MALFORMED_BODIES = {
    "truncated-json": b'{"application_id": 1,',
    "not-json": b"application_id=1&operator=normal",
    "array-root": b'[{"application_id": 1}]',
    "number-root": b"1",
    "string-root": b'"application_id"',
    "null-root": b"null",
    "true-root": b"true",
    "invalid-utf8": b'{"application_id": 1, "custom_user_id": "\xff\xfe"}',
    "nan": b'{"application_id": NaN}',
    "infinity": b'{"application_id": 1, "custom_user_id": "a", "x": Infinity}',
    "nul-in-custom-user-id": b'{"application_id": 1, "custom_user_id": "ab\\u0000cd"}',
    "deeply-nested": b'{"application_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "single-quotes": b"{'application_id': 1}",
    "trailing-garbage": b'{"application_id": 1} {}',
}


@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
def test_malformed_order_bodies_are_400_and_change_nothing(
    client: APIClient, buyer: Buyer, stocked: Application, body: bytes
) -> None:
    body = body.replace(b'"application_id": 1', f'"application_id": {stocked.pk}'.encode())
    transactions = LedgerTransaction.objects.count()

    response = raw_post(client, ORDERS, body, "application/json", **buyer.headers)

    assert_envelope(response, 400, "invalid_request")
    assert not Order.objects.exists()
    assert wallet_balance(buyer.user) == 100_000
    assert LedgerTransaction.objects.count() == transactions


def test_nul_byte_in_custom_user_id_names_the_field(
    client: APIClient, buyer: Buyer, stocked: Application
) -> None:
    body = json.dumps({"application_id": stocked.pk, "custom_user_id": "a\x00b"})

    response = raw_post(client, ORDERS, body, "application/json", **buyer.headers)

    error = assert_envelope(response, 400, "invalid_request")
    assert "custom_user_id" in error["fields"]


def test_validation_errors_carry_fields(client: APIClient, buyer: Buyer, app: Application) -> None:
    response = client.post(ORDERS, {"operator": "gold"}, format="json", **buyer.headers)

    error = assert_envelope(response, 400, "invalid_request")
    assert set(error["fields"]) == {"application_id", "operator"}
    for messages in error["fields"].values():
        assert isinstance(messages, list) and messages
        assert all(isinstance(m, str) for m in messages)


@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
def test_malformed_agent_bodies_are_400(client: APIClient, agent: Agent, body: bytes) -> None:
    response = raw_post(client, "/api/modem/sync", body, "application/json", **agent.headers)

    assert_envelope(response, 400, "invalid_request")


# --- body size ---------------------------------------------------------------------------------


def _padded(body: dict[str, Any], size: int) -> bytes:
    raw = json.dumps(body).encode()
    assert len(raw) <= size
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


@override_settings(API_MAX_BODY_BYTES=1000)
def test_a_body_over_the_limit_is_413(
    client: APIClient, buyer: Buyer, stocked: Application
) -> None:
    body = _padded({"application_id": stocked.pk}, 1001)

    response = raw_post(client, ORDERS, body, "application/json", **buyer.headers)

    assert_envelope(response, 413, "payload_too_large")
    assert not Order.objects.exists()
    assert wallet_balance(buyer.user) == 100_000


@override_settings(API_MAX_BODY_BYTES=1000)
def test_a_body_at_the_limit_is_accepted(
    client: APIClient, buyer: Buyer, stocked: Application
) -> None:
    body = _padded({"application_id": stocked.pk}, 1000)

    response = raw_post(client, ORDERS, body, "application/json", **buyer.headers)

    assert response.status_code == 201, response.content


@override_settings(API_MAX_BODY_BYTES=1000)
def test_an_agent_body_over_the_limit_is_413(client: APIClient, agent: Agent) -> None:
    body = _padded({"modems": []}, 5000)

    response = raw_post(client, "/api/modem/sync", body, "application/json", **agent.headers)

    assert_envelope(response, 413, "payload_too_large")


# --- Content-Type and Accept -------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=utf-8",
        "application/octet-stream",
    ],
)
def test_a_json_body_is_parsed_whatever_the_content_type(
    client: APIClient, buyer: Buyer, stocked: Application, content_type: str
) -> None:
    body = json.dumps({"application_id": stocked.pk, "operator": "normal"})

    response = raw_post(client, ORDERS, body, content_type, **buyer.headers)

    assert response.status_code == 201, response.content
    assert response.json()["application_id"] == stocked.pk
    assert response.json()["status"] == "pending"


def test_accept_html_still_gets_json(client: APIClient, buyer: Buyer, stocked: Application) -> None:
    created = client.post(
        ORDERS,
        {"application_id": stocked.pk},
        format="json",
        HTTP_ACCEPT="text/html",
        **buyer.headers,
    )
    read = client.get(
        f"{ORDERS}/{created.json()['order_id']}", HTTP_ACCEPT="text/html", **buyer.headers
    )

    assert created.status_code == 201
    assert created["Content-Type"].split(";")[0] == "application/json"
    assert read.status_code == 200
    assert read["Content-Type"].split(";")[0] == "application/json"
    assert read.json()["order_id"] == created.json()["order_id"]


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "image/png"])
def test_errors_are_json_whatever_the_accept_header(
    client: APIClient, buyer: Buyer, accept: str
) -> None:
    assert_envelope(client.get(ORDERS, HTTP_ACCEPT=accept), 401, "invalid_api_key")
    assert_envelope(
        client.get(f"{ORDERS}/987654321", HTTP_ACCEPT=accept, **buyer.headers), 404, "not_found"
    )
    assert_envelope(client.get("/api/nope", HTTP_ACCEPT=accept), 404, "not_found")
    assert_envelope(
        client.delete(ORDERS, HTTP_ACCEPT=accept, **buyer.headers), 405, "method_not_allowed"
    )


def test_services_answers_json_to_a_browser(client: APIClient, db: None) -> None:
    response = client.get("/api/v1/services", HTTP_ACCEPT="text/html,application/xhtml+xml")

    assert response.status_code == 200
    assert response["Content-Type"].split(";")[0] == "application/json"


# --- schema and docs ---------------------------------------------------------------------------


@pytest.fixture
def schema(client: APIClient, db: None) -> dict[str, Any]:
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_the_schema_is_served(client: APIClient, db: None) -> None:
    response = client.get("/api/schema/")

    assert response.status_code == 200
    assert b"openapi" in response.content


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    methods = {"get", "post", "put", "patch", "delete"}
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        if path.startswith(("/api/v1/", "/api/modem/"))
        for method, operation in item.items()
        if method in methods
    ]


def test_the_schema_covers_every_endpoint(schema: dict[str, Any]) -> None:
    documented = {(path, method) for path, method, _ in _operations(schema)}

    assert documented >= {
        ("/api/v1/services", "get"),
        ("/api/v1/orders", "get"),
        ("/api/v1/orders", "post"),
        ("/api/v1/orders/{order_id}", "get"),
        ("/api/v1/orders/{order_id}/cancel", "post"),
        ("/api/v1/orders/{order_id}/finish", "post"),
        ("/api/v1/balance", "get"),
        ("/api/v1/account", "get"),
        ("/api/v1/account", "patch"),
        ("/api/modem/sync", "post"),
        ("/api/modem/heartbeat", "post"),
        ("/api/modem/inbound-sms", "post"),
    }


def test_every_operation_documents_its_4xx_answers_as_the_envelope(
    schema: dict[str, Any],
) -> None:
    missing = []
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        expected: set[str] = set()
        if path != "/api/v1/services":  # public: no key, no body, no id
            expected |= {"401", "403"}
        if method in {"post", "patch"} and "requestBody" in operation:
            expected |= {"400", "413"}
        if "{" in path:
            expected.add("404")
        for status in expected - set(responses):
            missing.append(f"{method.upper()} {path}: {status}")
        for status, answer in responses.items():
            if status.startswith("4"):
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Error", (path, method, status)
    assert not missing, missing
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/api/v1/orders", "post", {"400", "401", "402", "404", "409", "413", "429"}),
        ("/api/v1/orders", "get", {"400", "401"}),
        ("/api/v1/orders/{order_id}", "get", {"401", "404"}),
        ("/api/v1/orders/{order_id}/cancel", "post", {"401", "404", "409"}),
        ("/api/v1/orders/{order_id}/finish", "post", {"401", "404", "409"}),
        ("/api/modem/sync", "post", {"400", "401", "403", "413"}),
        ("/api/modem/heartbeat", "post", {"400", "401", "403", "413"}),
        ("/api/modem/inbound-sms", "post", {"400", "401", "403", "404", "413"}),
    ],
)
def test_order_and_agent_operations_document_the_contracts_errors(
    schema: dict[str, Any], path: str, method: str, statuses: set[str]
) -> None:
    assert statuses <= set(schema["paths"][path][method]["responses"])


def test_swagger_ui_uses_only_local_static_assets(client: APIClient, db: None) -> None:
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "swagger-ui" in html
    assert not re.search(r"https?://", html), re.findall(r"https?://\S+", html)
    assert not re.search(r"""(?:src|href)\s*=\s*["']//""", html)
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    scripts = [a for a in assets if a.endswith(".js")]
    assert scripts, assets
    for asset in assets:
        if asset == "/api/docs/?script=":  # the set-up script, served apart for the CSP
            assert client.get(asset).status_code == 200
            continue
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not a static file"
