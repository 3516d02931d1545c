"""With LOG_FORMAT=json (the default when DEBUG is off) every request and every job is one
JSON line with its id and duration; the key's id is logged, never the key."""

import copy
import io
import json
import logging.config
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django_q.tasks import async_task

from accounts.models import ApiKey
from orders.models import Order
from orders.services import order_create
from tests.factories import ApplicationFactory, Buyer, ModemFactory, make_agent
from zerotp.logs import JsonFormatter


class LogOutput:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self, logger: str | None = None) -> list[dict[str, Any]]:
        # Every line must parse: one JSON object per line, nothing else.
        parsed = [json.loads(line) for line in self.text.splitlines()]
        return [line for line in parsed if logger is None or line["logger"] == logger]


@pytest.fixture
def log_output() -> Iterator[LogOutput]:
    """The project's own LOGGING, its console handler writing to a buffer."""
    assert django_settings.LOG_FORMAT == "json"  # the default with DEBUG off, as here
    config = copy.deepcopy(django_settings.LOGGING)
    stream = io.StringIO()
    config["handlers"]["console"]["stream"] = stream
    logging.config.dictConfig(config)
    yield LogOutput(stream)
    logging.config.dictConfig(django_settings.LOGGING)


@pytest.fixture
def order(buyer: Buyer) -> Order:
    app = ApplicationFactory()
    ModemFactory(reseller=make_agent().user)
    created = order_create(buyer=buyer.user, application_id=app.pk)
    return Order.objects.get(pk=created.order.pk)


def test_a_request_is_one_json_line_with_its_ids_and_never_the_key(
    buyer: Buyer, order: Order, log_output: LogOutput
) -> None:
    response = Client().get(f"/api/v1/orders/{order.pk}", **buyer.headers)

    assert response.status_code == 200
    [line] = log_output.lines("zerotp.request")
    key = ApiKey.objects.get(user=buyer.user, kind="api", revoked_at=None)
    assert line["level"] == "INFO"
    assert line["method"] == "GET"
    assert line["path"] == f"/api/v1/orders/{order.pk}"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["key_id"] == key.pk
    assert line["order_id"] == order.pk
    assert line["request_id"] == response["X-Request-ID"]
    assert len(line["request_id"]) == 32
    secret = buyer.key.removeprefix("ztp_live_")
    assert secret not in log_output.text and buyer.key not in log_output.text


def test_a_refused_key_is_not_logged_either(db: None, log_output: LogOutput) -> None:
    wrong = "ztp_live_" + "N0tAR3alKeyButSt1llSecretMaterial"

    response = Client().get("/api/v1/balance", HTTP_X_API_KEY=wrong)

    assert response.status_code == 401
    [line] = log_output.lines("zerotp.request")
    assert line["status"] == 401 and line["key_id"] is None
    assert "N0tAR3alKey" not in log_output.text


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("3f2c1d8e-5b7a-4c1e-9f0a-2b3c4d5e6f70", True),
        ("Root=1-67891233-abcdef012345678912345678", True),
        ("two words", False),
        ("x" * 129, False),
        ('bad"\nInjected: header', False),
    ],
)
def test_a_sane_incoming_request_id_is_kept_and_echoed(
    db: None, log_output: LogOutput, incoming: str, kept: bool
) -> None:
    response = Client().get("/api/v1/services", HTTP_X_REQUEST_ID=incoming)

    [line] = log_output.lines("zerotp.request")
    assert line["request_id"] == response["X-Request-ID"]
    assert (response["X-Request-ID"] == incoming) is kept


def test_a_server_error_logs_its_traceback_under_the_request_id(
    db: None, log_output: LogOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orders import api as orders_api

    def broken() -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(orders_api, "services_catalogue", broken)

    response = Client(raise_request_exception=False).get("/api/v1/services")

    assert response.status_code == 500
    [request_line] = log_output.lines("zerotp.request")
    assert request_line["level"] == "ERROR" and request_line["status"] == 500
    [error] = log_output.lines("django.request")
    assert error["request_id"] == response["X-Request-ID"]
    assert "RuntimeError: a bug" in error["exc"]


def test_a_password_reset_link_is_logged_without_its_token(db: None, log_output: LogOutput) -> None:
    Client().get("/password/reset/MQ/c3xyz-0123456789abcdef0123456789abcdef/")

    [line] = log_output.lines("zerotp.request")
    assert line["path"] == "/password/reset/MQ/[token]/"
    assert "0123456789abcdef" not in log_output.text


def test_probes_are_logged_only_when_they_fail(db: None, log_output: LogOutput) -> None:
    assert Client().get("/healthz").status_code == 200
    assert Client().get("/readyz").status_code == 503  # no expiry sweep has run

    [line] = log_output.lines()  # Django's "Service Unavailable" would only repeat it
    assert line["logger"] == "zerotp.request"
    assert line["path"] == "/readyz" and line["status"] == 503


def test_a_job_is_one_json_line_with_its_name_duration_and_outcome(
    db: None, log_output: LogOutput
) -> None:
    async_task("orders.tasks.expire_orders", sync=True)
    async_task("logging.warning", "said by a task", sync=True)
    with pytest.raises(ValueError, match="math domain error"):
        async_task("math.sqrt", -1, sync=True)

    done, _, failed = log_output.lines("zerotp.job")
    assert done["task"] == "orders.tasks.expire_orders"
    assert done["outcome"] == "success" and done["level"] == "INFO"
    assert isinstance(done["duration_ms"], float)
    assert done["task_id"] and done["queued_ms"] >= 0
    assert failed["task"] == "math.sqrt"
    assert failed["outcome"] == "failure" and failed["level"] == "ERROR"
    assert failed["error"].startswith("math domain error")
    # What a task logs itself carries the job's id; django-q's own lines are left out.
    [said] = log_output.lines("root")
    assert said["message"] == "said by a task" and said["task"] == "logging.warning"
    assert said["task_id"] and said["task_id"] != done["task_id"]
    assert not log_output.lines("django-q")


def test_the_formatter_keeps_extra_fields_and_turns_the_rest_into_text() -> None:
    record = logging.makeLogRecord(
        {"name": "x", "levelno": 20, "levelname": "INFO", "msg": "hi %s", "args": ("there",)}
    )
    record.order_id = 7
    record.when = object()

    line = json.loads(JsonFormatter().format(record))

    assert line["message"] == "hi there" and line["order_id"] == 7
    assert line["when"].startswith("<object object")
    assert line["time"].endswith("+00:00")


def test_make_run_keeps_plain_text_and_the_quiet_agent_polls() -> None:
    """`make run` (DEBUG=true) logs as before: runserver's lines, less the agent's polls."""
    script = """if True:
        import json, logging
        from zerotp import settings
        quiet = settings.LOGGING["filters"]["quiet_agent_polls"]["callback"]
        poll = logging.makeLogRecord({"msg": '"GET /api/modem/orders HTTP/1.1" 200 2'})
        poll.status_code = 200
        print(json.dumps({"format": settings.LOG_FORMAT, "config": settings.LOGGING,
                          "poll_shown": quiet(poll)}, default=str))
    """
    env = {**os.environ, "DEBUG": "true"}
    env.pop("LOG_FORMAT", None)
    run = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    shown = json.loads(run.stdout)

    assert shown["format"] == "text"
    assert "json" not in shown["config"]["formatters"]
    assert shown["config"]["loggers"]["zerotp.request"]["level"] == "WARNING"
    assert shown["config"]["loggers"]["django.server"]["filters"] == ["quiet_agent_polls"]
    assert shown["poll_shown"] is False
