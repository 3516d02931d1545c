"""Structured logs: one JSON object per line (LOG_FORMAT=json), one line per request and
one per job, every line of a request or a job carrying its id.

Loaded by the LOGGING setting before the apps are ready: nothing here imports a model."""

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse

# The request (or job) this thread is working for; every log record made meanwhile gets it.
current_ids: ContextVar[dict[str, Any] | None] = ContextVar("zerotp_log_ids", default=None)

# What LogRecord carries by itself; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# Set by Django's own loggers: objects (a socket, a request) that say nothing useful as text.
_UNWANTED_EXTRAS = {"request", "server_time"}


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, then the record's extra fields; an exception as one
    string. Values that are not JSON become their str()."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(current_ids.get() or {})
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and name not in _UNWANTED_EXTRAS:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


# A caller's own id is kept if it looks like one (a UUID, a ULID, a trace id), else replaced.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=+/-]{0,127}", re.ASCII)
# Probes hit every node every few seconds; their successes would be most of the log.
_PROBE_PATHS = {"/healthz", "/readyz", "/metrics"}
request_log = logging.getLogger("zerotp.request")


def request_id_of(request: HttpRequest) -> str:
    incoming = request.headers.get("X-Request-ID", "")
    if _SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def _logged_path(request: HttpRequest) -> str:
    """The path, less the secret of a password-reset link."""
    match = request.resolver_match
    token = match.kwargs.get("token") if match else None
    if isinstance(token, str) and token:
        return request.path.replace(token, "[token]")
    return request.path


class RequestLogMiddleware:
    """First in MIDDLEWARE: gives each request an id (echoed in `X-Request-ID`) and logs
    one line when the answer is ready: method, path, status, duration, key id (the ApiKey
    row's id: never the key), order id when the path names one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = request_id_of(request)
        token = current_ids.set({"request_id": request_id})
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            if not (request.path in _PROBE_PATHS and response.status_code < 400):
                self._log(request, response, started)
            return response
        finally:
            current_ids.reset(token)

    def _log(self, request: HttpRequest, response: HttpResponse, started: float) -> None:
        status = response.status_code
        match = request.resolver_match
        key = getattr(request, "auth", None)  # DRF copies its authenticated key here
        fields = {
            "method": request.method,
            "path": _logged_path(request),
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            "key_id": getattr(key, "pk", None),
            "order_id": match.kwargs.get("order_id") if match else None,
        }
        level = logging.ERROR if status >= 500 else logging.INFO
        request_log.log(level, "%s %s %s", request.method, fields["path"], status, extra=fields)


job_log = logging.getLogger("zerotp.job")


def job_started(sender: object, func: object, task: dict[str, Any], **kwargs: Any) -> None:
    """django-q2's pre_execute, in the worker process, just before the task runs."""
    task["_log_started"] = time.perf_counter()
    # Popped again before django-q pickles the task for its monitor.
    task["_log_context"] = current_ids.set({"task_id": task.get("id"), "task": _task_name(task)})


def job_finished(sender: object, func: object, task: dict[str, Any], **kwargs: Any) -> None:
    """django-q2's post_execute_in_worker, in the worker process, once the task is done."""
    started = task.pop("_log_started", None)
    duration = time.perf_counter() - started if started is not None else None
    enqueued = task.get("started")
    success = bool(task.get("success"))
    fields = {
        "task": _task_name(task),
        "task_id": task.get("id"),
        "outcome": "success" if success else "failure",
        "duration_ms": round(duration * 1000, 1) if duration is not None else None,
    }
    if isinstance(enqueued, datetime) and enqueued.tzinfo is not None:
        waited = (datetime.now(UTC) - enqueued).total_seconds() - (duration or 0)
        fields["queued_ms"] = round(max(waited, 0) * 1000, 1)
    if not success:
        # django-q keeps "message : traceback"; the first line says what went wrong. A task
        # run with sync=True signals before that, from inside its `except`.
        error = task["result"] if "result" in task else sys.exc_info()[1]
        fields["error"] = str(error).split("\n", 1)[0][:500]
    job_log.log(
        logging.INFO if success else logging.ERROR,
        "%s %s",
        fields["task"],
        fields["outcome"],
        extra=fields,
    )
    context = task.pop("_log_context", None)
    if context is not None:
        current_ids.reset(context)


def _task_name(task: dict[str, Any]) -> str:
    func = task.get("func")
    if callable(func):
        return f"{func.__module__}.{func.__qualname__}"
    return str(func)
