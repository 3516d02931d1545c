"""API and agent keys: random, prefixed per kind, stored only as a digest.

Keys are long random strings, so a plain SHA-256 digest with a unique index is enough to
look them up in one indexed query; a password hasher would cost hundreds of milliseconds
on every request. The digest is compared again with `hmac.compare_digest` after the lookup.
"""

import base64
import hashlib
import hmac
import secrets

API_KEY_PREFIX = "ztp_live_"
AGENT_KEY_PREFIX = "ztp_agent_"
CALLBACK_SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


def new_key(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def digests_match(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def new_callback_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 24 random bytes."""
    return CALLBACK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()
