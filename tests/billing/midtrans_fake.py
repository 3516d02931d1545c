"""A fake Midtrans on 127.0.0.1 for the top-up tests: Snap's `POST /snap/v1/transactions`
and the status API's `GET /v2/<order_id>/status`, asking and answering as Midtrans
documents them (HTTP Basic with the server key, amounts written "50000.00"). It records
every request; the test sets each transaction's state and can make either endpoint fail.
`notification` builds the body Midtrans POSTs to us, signed; `notify` POSTs it."""

import base64
import hashlib
import json
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

SERVER_KEY = "SB-Mid-server-zerotp-tests"
NOTIFICATION_PATH = "/payments/midtrans/notification"
_ORDER_ID = re.compile(r"[A-Za-z0-9\-_.~]{1,50}")

# Midtrans's status_code for each transaction_status, as its notifications carry them.
STATUS_CODES = {
    "capture": "200",
    "settlement": "200",
    "cancel": "200",
    "pending": "201",
    "deny": "202",
    "expire": "202",
    "failure": "202",
}


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the JSON sent, None for none
    authorized: bool  # Basic auth was the server key with an empty password


def basic_auth(server_key: str) -> str:
    return "Basic " + base64.b64encode(f"{server_key}:".encode()).decode()


def money(amount: int) -> str:
    """An amount as Midtrans writes it."""
    return f"{amount}.00"


def closed_url() -> str:
    """A base URL nothing listens on: connecting to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


class FakeMidtrans:
    def __init__(self, server_key: str = SERVER_KEY) -> None:
        self.server_key = server_key
        self.received: list[Received] = []
        self.created: dict[str, int] = {}  # order_id -> gross_amount, from Snap
        self.transactions: dict[str, dict[str, str]] = {}  # what the status API answers
        self.snap_failure: str | None = None  # "500" or "closed"
        self.status_failure: str | None = None  # "500", "500-html" or "closed"
        self._status_barrier: threading.Barrier | None = None
        # The sandbox's payment page, when serve_pages() is on: where Pay notifies, and
        # where it sends the buyer back (Midtrans's "finish redirect URL").
        self.site_url: str | None = None
        self.finish_path = "/topup/midtrans/finish/"
        self.status_barrier_broken = False
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake._answer(self, "POST")

            def do_GET(self) -> None:
                fake._answer(self, "GET")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    # What the test sets.

    def set(
        self,
        order_id: str,
        transaction_status: str,
        *,
        fraud_status: str = "accept",
        gross_amount: str | None = None,
        payment_type: str = "qris",
        answer_order_id: str | None = None,
    ) -> None:
        """The transaction as the status API will answer it from now on (the amount Snap
        was asked for unless told otherwise)."""
        with self._lock:
            amount = gross_amount or money(self.created[order_id])
            self.transactions[order_id] = {
                "status_code": "407" if transaction_status == "expire" else "200",
                "status_message": "Success, transaction is found",
                "transaction_id": str(uuid.uuid5(uuid.NAMESPACE_URL, order_id)),
                "order_id": answer_order_id or order_id,
                "merchant_id": "G000000000",
                "gross_amount": amount,
                "currency": "IDR",
                "payment_type": payment_type,
                "transaction_time": "2025-01-02 10:00:00",
                "transaction_status": transaction_status,
                "fraud_status": fraud_status,
                "expiry_time": "2025-01-03 10:00:00",
            }

    def hold_status_answers(self, parties: int, timeout: float = 10) -> None:
        """Answer no status request until `parties` are waiting (all of them then at
        once): the notifications' own work is then surely concurrent."""
        self._status_barrier = threading.Barrier(parties, timeout=timeout)

    def notification(self, order_id: str, transaction_status: str, **fields: str) -> dict:
        """What Midtrans POSTs for this transaction (the amount Snap was asked for)."""
        fields.setdefault("gross_amount", money(self.created.get(order_id, 50_000)))
        return notification(order_id, transaction_status, server_key=self.server_key, **fields)

    # What the test reads.

    def calls(self, method: str, path_start: str) -> list[Received]:
        with self._lock:
            return [
                r for r in self.received if r.method == method and r.path.startswith(path_start)
            ]

    @property
    def snap_calls(self) -> list[Received]:
        return self.calls("POST", "/snap/v1/transactions")

    def status_calls(self, order_id: str = "") -> list[Received]:
        return self.calls("GET", f"/v2/{order_id}")

    def redirect_url(self, order_id: str) -> str:
        base = self.url if self.site_url else "https://app.sandbox.midtrans.com"
        return f"{base}/snap/v4/redirection/{self._token(order_id)}"

    def serve_pages(self, site_url: str) -> None:
        """Serve the payment page itself, shaped like the sandbox's: its Pay button settles
        the transaction, notifies `site_url` as Midtrans does, and sends the buyer back."""
        self.site_url = site_url

    # Serving.

    def _token(self, order_id: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{self.url}/{order_id}"))

    def _answer(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        authorized = handler.headers.get("Authorization") == basic_auth(self.server_key)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self.received.append(Received(method, handler.path, headers, body, authorized))
        page = re.fullmatch(r"/snap/v4/(redirection|pay)/([0-9a-f-]+)", handler.path)
        if page and self.site_url:
            self._page(handler, method, page.group(1), page.group(2))
            return
        if method == "POST" and handler.path == "/snap/v1/transactions":
            status, answer = self._snap(body, authorized)
        elif method == "GET" and (found := re.fullmatch(r"/v2/([^/]+)/status", handler.path)):
            status, answer = self._status(found.group(1), authorized)
        else:
            status, answer = 404, {"status_code": "404", "status_message": "Not found"}
        if status == 0:  # hang up without a word
            handler.close_connection = True
            return
        data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        handler.send_response(status)
        content_type = "text/html" if isinstance(answer, bytes) else "application/json"
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _page(self, handler: BaseHTTPRequestHandler, method: str, kind: str, token: str) -> None:
        with self._lock:
            order_id = next((o for o in self.created if self._token(o) == token), None)
        if order_id is None:
            handler.send_error(404)
            return
        if kind == "redirection" and method == "GET":
            amount = f"{self.created[order_id]:,}".replace(",", ".")
            html = (
                "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
                "<title>Midtrans sandbox</title></head><body><main>"
                f"<h1>Pay Rp {amount}</h1><p>Order {order_id}</p>"
                f"<form method='post' action='/snap/v4/pay/{token}'>"
                "<button type='submit'>Pay with QRIS</button></form></main></body></html>"
            ).encode()
            handler.send_response(200)
            handler.send_header("Content-Type", "text/html; charset=utf-8")
            handler.send_header("Content-Length", str(len(html)))
            handler.end_headers()
            handler.wfile.write(html)
            return
        # Pay: settled, notified (Midtrans does it before the buyer is back), redirected.
        self.set(order_id, "settlement")
        assert self.site_url is not None
        status, _ = notify(self.site_url, self.notification(order_id, "settlement"))
        assert status == 200, status
        handler.send_response(303)
        handler.send_header(
            "Location",
            f"{self.site_url}{self.finish_path}?order_id={order_id}"
            "&status_code=200&transaction_status=settlement",
        )
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def _snap(self, body: Any, authorized: bool) -> tuple[int, Any]:
        if self.snap_failure == "closed":
            return 0, None
        if self.snap_failure == "500":
            return 500, {"error_messages": ["Sorry, we encountered internal server error."]}
        if not authorized:
            return 401, {
                "error_messages": [
                    "Access denied due to unauthorized transaction, please check client or "
                    "server key"
                ]
            }
        details = body.get("transaction_details") if isinstance(body, dict) else None
        order_id = details.get("order_id") if isinstance(details, dict) else None
        amount = details.get("gross_amount") if isinstance(details, dict) else None
        if not isinstance(order_id, str) or not _ORDER_ID.fullmatch(order_id):
            return 400, {"error_messages": ["transaction_details.order_id is invalid"]}
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
            return 400, {"error_messages": ["transaction_details.gross_amount is invalid"]}
        items = body.get("item_details")
        if items is not None and sum(i["price"] * i["quantity"] for i in items) != amount:
            return 400, {
                "error_messages": [
                    "transaction_details.gross_amount is not equal to the sum of item_details"
                ]
            }
        with self._lock:
            if order_id in self.created:
                return 400, {"error_messages": ["transaction_details.order_id sudah digunakan"]}
            self.created[order_id] = amount
        token = self._token(order_id)
        return 201, {"token": token, "redirect_url": self.redirect_url(order_id)}

    def _status(self, order_id: str, authorized: bool) -> tuple[int, Any]:
        barrier = self._status_barrier
        if barrier is not None:
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                self.status_barrier_broken = True
        if self.status_failure == "closed":
            return 0, None
        if self.status_failure == "500":
            return 500, {
                "status_code": "500",
                "status_message": "Sorry. Our system is recovering from unexpected issues. "
                "Please retry.",
            }
        if self.status_failure == "500-html":
            return 500, b"<html><body>500 Internal Server Error</body></html>"
        if not authorized:
            return 401, {
                "status_code": "401",
                "status_message": "Unknown Merchant server_key/id",
            }
        with self._lock:
            transaction = self.transactions.get(order_id)
        if transaction is None:
            return 404, {"status_code": "404", "status_message": "Transaction doesn't exist."}
        return 200, transaction


@contextmanager
def running_midtrans(server_key: str = SERVER_KEY) -> Iterator[FakeMidtrans]:
    fake = FakeMidtrans(server_key)
    thread = threading.Thread(
        target=fake.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def notification(
    order_id: str,
    transaction_status: str,
    *,
    server_key: str = SERVER_KEY,
    gross_amount: str = "50000.00",
    **fields: str,
) -> dict[str, str]:
    """A notification as Midtrans sends it: every field a string, signature_key the
    SHA-512 of order_id + status_code + gross_amount + server key (fields override)."""
    body = {
        "transaction_time": "2025-01-02 10:00:00",
        "transaction_status": transaction_status,
        "transaction_id": str(uuid.uuid5(uuid.NAMESPACE_URL, order_id)),
        "status_message": "midtrans payment notification",
        "status_code": STATUS_CODES.get(transaction_status, "200"),
        "payment_type": "qris",
        "order_id": order_id,
        "merchant_id": "G000000000",
        "gross_amount": gross_amount,
        "fraud_status": "accept",
        "currency": "IDR",
        **fields,
    }
    if "signature_key" not in fields:
        material = body["order_id"] + body["status_code"] + body["gross_amount"] + server_key
        body["signature_key"] = hashlib.sha512(material.encode()).hexdigest()
    return body


def notify(target: Any, body: dict | bytes) -> tuple[int, Any]:
    """POST a notification: to a live server's base URL (real HTTP), or through a Django
    test client. The status and the JSON answered (None for none)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    if isinstance(target, str):
        response = requests.post(
            target + NOTIFICATION_PATH,
            data=raw,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        status, text = response.status_code, response.text
    else:
        answer = target.post(NOTIFICATION_PATH, data=raw, content_type="application/json")
        status, text = answer.status_code, answer.content.decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, None
