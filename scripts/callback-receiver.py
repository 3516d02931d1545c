#!/usr/bin/env python3
"""A callback receiver for trying ZeroTP's callbacks locally: it prints every request
it gets and verifies its Standard Webhooks signature the way a buyer's code should.

    .venv/bin/python scripts/callback-receiver.py --secret whsec_... [--port 9000] [--fail 2]

`--fail N` answers 500 to the first N requests, to watch the retries in the delivery log
(GET /api/v1/callbacks). Point the account at it with
    curl -X PATCH $BASE/api/v1/account -H "X-API-KEY: $API_KEY" \\
         -d '{"callback_url": "http://127.0.0.1:9000/otp"}'
(`make run` allows loopback callback URLs; production refuses them).
"""

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--secret", required=True, help="The account's callback_secret.")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--fail", type=int, default=0, help="Answer 500 this many times first.")
    args = parser.parse_args()
    webhook = Webhook(args.secret)
    state = {"seen": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state["seen"] += 1
            status = 500 if state["seen"] <= args.fail else 200
            print(f"--- request {state['seen']}: POST {self.path} -> answering {status}")
            for name in (
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
                "content-type",
                "user-agent",
            ):
                print(f"{name}: {self.headers.get(name)}")
            print(body.decode("utf-8", errors="replace"))
            try:
                payload = webhook.verify(body, dict(self.headers.items()))
                print("signature: VALID", json.dumps(payload, ensure_ascii=False))
            except WebhookVerificationError as exc:
                print(f"signature: INVALID ({exc})")
            sys.stdout.flush()
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"failing on purpose")

        def log_message(self, *args: object) -> None:
            pass

    print(f"listening on http://127.0.0.1:{args.port}/ (failing the first {args.fail})")
    sys.stdout.flush()
    HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
