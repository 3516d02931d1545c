"""Text that can be stored and echoed: no NUL (PostgreSQL refuses it) and no lone UTF-16
surrogate (legal as a JSON escape, but no character: UTF-8 cannot encode it)."""

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(text: str) -> bool:
    return bool(_UNSTORABLE.search(text))


def printable(text: str) -> str:
    """The text with anything unstorable written as an escape, for error messages."""
    if not unstorable(text):
        return text
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
