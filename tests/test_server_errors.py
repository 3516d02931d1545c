"""Failures on our side still answer in the envelope under /api/: a JSON 500 for a bug,
a 503 with Retry-After while the database is unreachable."""

import pytest
from django.db import OperationalError
from django.test import Client

from orders import api as orders_api

pytestmark = pytest.mark.django_db


def fail_with(exception: Exception) -> object:
    def raise_it() -> None:
        raise exception

    return raise_it


def test_a_database_outage_is_a_503_with_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orders_api, "services_catalogue", fail_with(OperationalError("gone")))

    response = Client(raise_request_exception=False).get("/api/v1/services")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "service_unavailable"


def test_a_bug_under_the_api_is_a_json_500(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orders_api, "services_catalogue", fail_with(RuntimeError("bug")))

    response = Client(raise_request_exception=False).get("/api/v1/services")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "server_error"
    assert "bug" not in response.content.decode()  # no internals leak
