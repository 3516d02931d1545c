"""Which open order an inbound SMS belongs to, and the code it carries for that order.

Pure rules over order-like objects (no database): `orders.services.sms_receive` fetches the
open orders on the line, asks these functions for the ranked, coded candidates, and writes.
"""

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from orders.otp import extract_otp

# The value of orders.models.OrderStatus.PENDING; this module imports no Django.
PENDING = "pending"


class MatchedApplication(Protocol):
    @property
    def patterns(self) -> Sequence[str]: ...
    @property
    def otp_pattern(self) -> str: ...


class Candidate(Protocol):
    """What the rules read of an open order."""

    @property
    def pk(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def application(self) -> MatchedApplication: ...


def pattern_hit(patterns: Sequence[str], sender: str, text: str) -> bool:
    """True when any pattern is found, ignoring case, in the sender or the text. A pattern
    that does not compile is skipped: the model's validator guards forms, not every write."""
    for pattern in patterns:
        try:
            if re.search(pattern, sender, re.IGNORECASE) or re.search(pattern, text, re.IGNORECASE):
                return True
        except re.error:
            continue
    return False


def ranked[C: Candidate](candidates: Iterable[C], sender: str, text: str) -> list[C]:
    """The candidates the SMS may belong to, best first: applications whose patterns match,
    then applications without patterns (they take any SMS); pending before completed; then
    the oldest. Candidates whose application has patterns that all miss are left out."""
    keyed = []
    for candidate in candidates:
        patterns = candidate.application.patterns
        if patterns and not pattern_hit(patterns, sender, text):
            continue
        key = (
            0 if patterns else 1,
            0 if candidate.status == PENDING else 1,
            candidate.created_at,
            candidate.pk,
        )
        keyed.append((key, candidate))
    return [candidate for _, candidate in sorted(keyed, key=lambda pair: pair[0])]


def coded[C: Candidate](candidates: Iterable[C], sender: str, text: str) -> list[tuple[C, str]]:
    """Each ranked candidate with the code found for it (with its application's own
    otp_pattern, if any), best first; a candidate for which no code is found is dropped."""
    found = [
        (candidate, extract_otp(text, sender, pattern=candidate.application.otp_pattern or None))
        for candidate in ranked(candidates, sender, text)
    ]
    return [(candidate, code) for candidate, code in found if code is not None]


def expected_code(
    coded_list: Sequence[tuple[Candidate, str]], sender: str, text: str
) -> str | None:
    """The code stored on the SMS row: the best candidate's, or, when no candidate has one,
    whatever the generic extraction finds."""
    return coded_list[0][1] if coded_list else extract_otp(text, sender)
