"""Job-queue tasks of modems: thin and safe to run twice."""

from modems.services import modems_mark_offline


def mark_offline() -> int:
    """Take modems whose heartbeats stopped out of the order pick's index (every minute)."""
    return modems_mark_offline()
