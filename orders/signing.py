"""Standard Webhooks signatures (https://www.standardwebhooks.com/), no Django here.

`webhook-signature` is `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), where the
key is the base64 part of the account's `whsec_...` secret. During a secret rotation both
signatures are sent, separated by a space, and receivers accept either.
"""

import base64
import hashlib
import hmac

from accounts.keys import CALLBACK_SECRET_PREFIX


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(CALLBACK_SECRET_PREFIX))


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets: list[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(signature(s, webhook_id, timestamp, body) for s in secrets)


def webhook_headers(
    secrets: list[str], webhook_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, webhook_id, timestamp, body),
        "Content-Type": "application/json",
    }
