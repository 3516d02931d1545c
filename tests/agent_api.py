"""Small helpers for tests that drive the agent and buyer APIs through the DRF client."""

import json
from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient

from orders.models import Application
from tests.factories import Agent, Buyer

SEED_BODY = {"modems": [{"uid": "COM3", "signal": 75, "can_order": True}]}


def heartbeat(client: APIClient, agent: Agent, body: Any) -> Response:
    return client.post(
        "/api/modem/heartbeat",
        data=json.dumps(body),
        content_type="application/json",
        **agent.headers,
    )


def beat(client: APIClient, agent: Agent, *items: Any) -> Response:
    return heartbeat(client, agent, {"modems": list(items)})


def stock(client: APIClient, app: Application, operator: str = "normal") -> int:
    response = client.get("/api/v1/services")
    assert response.status_code == 200
    entry = next(item for item in response.json() if item["id"] == app.pk)
    return entry["operators"][operator]["stock"]


def order(client: APIClient, buyer: Buyer, app: Application, operator: str = "normal") -> dict:
    response = client.post(
        "/api/v1/orders",
        {"application_id": app.pk, "operator": operator},
        format="json",
        **buyer.headers,
    )
    assert response.status_code == 201, response.json()
    return response.json()


def ago(seconds: int) -> Any:
    return timezone.now() - timedelta(seconds=seconds)


# --- Stock rules: what GET /api/v1/services counts -------------------------------------------
