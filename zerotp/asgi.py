"""The site for gunicorn's asyncio worker (`make serve`; zerotp/gunicorn.conf.py): Django's
WSGI application, handed only whole requests.

gunicorn's sync and gthread workers give a connection a thread as soon as its first bytes
arrive, and the thread then waits for the rest: clients that declare a body and send it
slowly held every thread, and the catalogue waited 31.6 s (issue 14). Here the event loop
reads every connection at once: gunicorn the headers (zerotp/serving.py bounds how long
they may take), `WholeRequests` the body, within BODY_SECONDS and up to a size. Only a
complete request takes one of the process's threads that run Django, and the answer is
written back by the loop, so a client that stops reading holds no thread either.

Django's own ASGI handler reads the body on the loop too, but runs each request in a new
thread, where no database connection outlives its request: a PostgreSQL connect per request
made the catalogue 4x slower here. So Django stays a WSGI application, the one the test
suite and `make bench` run, with its persistent connections.
"""

import asyncio
import io
import os
import sys
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import JsonResponse

from zerotp.errors import error_body

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zerotp.settings")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# The whole body must arrive within this many seconds of the headers (1 MB at 50 KB/s);
# below gunicorn's `timeout`, its own limit on the wait for each piece (gunicorn.conf.py).
BODY_SECONDS = 20
# Threads running Django in each worker process: while one waits for the database, another
# runs. One database connection each.
THREADS = 4


class Refused(Exception):
    """A request answered without Django: its body is too large or too slow."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ClientGone(Exception):
    pass


class WholeRequests:
    """An ASGI application that reads each request whole, then runs a WSGI application on
    it in a thread pool and sends its answer."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        max_body_bytes: int,
        threads: int = THREADS,
        body_seconds: float = BODY_SECONDS,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_seconds = body_seconds
        self.threads = ThreadPoolExecutor(threads, thread_name_prefix="django")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan events or websockets here (gunicorn.conf.py: asgi_lifespan)
        try:
            body = await self.read_body(scope, receive)
        except ClientGone:
            return
        except Refused as refusal:
            await send_refusal(scope, send, refusal)
            return
        loop = asyncio.get_running_loop()
        # run_in_executor, not asyncio.to_thread: the thread gets no copy of this task's
        # context, so Django's connections stay thread-local and persistent.
        status, headers, chunks = await loop.run_in_executor(
            self.threads, self.run_app, wsgi_environ(scope, body)
        )
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"".join(chunks)})

    async def read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.max_body_bytes
        declared = header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large(limit)
        body = bytearray()
        try:
            async with asyncio.timeout(self.body_seconds):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise ClientGone
                    body += message.get("body", b"")
                    if len(body) > limit:
                        raise too_large(limit)
                    if not message.get("more_body", False):
                        return bytes(body)
        except TimeoutError:
            raise Refused(
                408,
                "request_timeout",
                f"The request body did not arrive within {self.body_seconds:g} s.",
            ) from None

    def run_app(self, environ: dict[str, Any]) -> tuple[int, Headers, list[bytes]]:
        """Runs in a worker thread: the whole answer, collected (PEP 3333)."""
        started: list[tuple[int, Headers]] = []
        chunks: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            code = int(status.split(" ", 1)[0])
            started[:] = [
                (code, [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers])
            ]
            return chunks.append

        result = self.app(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            # Django's request_finished signal (database connections, logs) fires here.
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started[0]
        return status, headers, chunks


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def too_large(limit: int) -> Refused:
    return Refused(413, "payload_too_large", f"The request body is over {limit} bytes.")


def wsgi_environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """PEP 3333's environ for an ASGI request whose body has been read. The body is no
    longer chunked: it is given its length, as a buffering proxy does."""
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client")
    root = scope.get("root_path", "")
    path = scope["path"]
    if root and path.startswith(root):
        path = path[len(root) :]
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        # WSGI strings carry bytes as latin-1; Django decodes the path as UTF-8 from them.
        "SCRIPT_NAME": root.encode("utf-8").decode("latin-1"),
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if client:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client[0], str(client[1])
    for name, value in scope["headers"]:
        key = name.decode("latin-1").upper().replace("-", "_")
        if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
            continue
        if key != "CONTENT_TYPE":
            key = f"HTTP_{key}"
        text = value.decode("latin-1")
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    if body or header(scope, b"content-length") is not None:
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


async def send_refusal(scope: Scope, send: Send, refusal: Refused) -> None:
    """The error envelope under /api/, plain text elsewhere; the connection is closed."""
    if scope["path"].startswith("/api/"):
        response = JsonResponse(error_body(refusal.code, refusal.message), status=refusal.status)
        content_type, body = response["Content-Type"], response.content
    else:
        content_type, body = "text/plain; charset=utf-8", refusal.message.encode()
    headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _max_body_bytes() -> int:
    # The API refuses more than API_MAX_BODY_BYTES itself (zerotp/api.py); forms get Django's
    # own limit. Nothing longer is read.
    return max(settings.API_MAX_BODY_BYTES, settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0)


application = WholeRequests(get_wsgi_application(), max_body_bytes=_max_body_bytes())
