"""Request bodies the agent scenarios send, shared by the load and the EXPLAIN step."""

from typing import Any

# A bench modem as stored: uid, phone number, provider, signal, mapping.
StoredModem = tuple[str, str, str, int, str]


def heartbeat_body(modems: list[StoredModem]) -> dict[str, Any]:
    return {"modems": [{"uid": m[0], "signal": m[3], "can_order": True} for m in modems]}


def sync_body(modems: list[StoredModem]) -> dict[str, Any]:
    """Exactly what is stored, so the sync changes nothing."""
    return {
        "modems": [
            {
                "uid": uid,
                "phone_number": phone,
                "provider": provider,
                "signal": signal,
                "mapping": mapping,
            }
            for uid, phone, provider, signal, mapping in modems
        ]
    }


def sms_body(uid: str, phone: str, code: int) -> dict[str, Any]:
    return {"uid": uid, "phone_number": phone, "from": "BENCH", "text": f"Your code is {code}"}
