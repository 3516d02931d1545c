"""Job-queue tasks of billing: thin and safe to run twice."""

from billing.topups import topups_expire


def expire_topups() -> int:
    """Mark pending top-ups past their time expired (scheduled every ten minutes); a
    payment that still arrives later pays them."""
    return topups_expire()
