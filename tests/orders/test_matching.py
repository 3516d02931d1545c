"""Tests for orders.matching: which open order an SMS belongs to, and its code. Plain
dataclasses stand in for orders; no database."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from orders.matching import PENDING, coded, expected_code, pattern_hit, ranked
from orders.models import OrderStatus

P = pytest.param
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
COMPLETED = "completed"


@dataclass(frozen=True)
class App:
    patterns: tuple[str, ...] = ()
    otp_pattern: str = ""


@dataclass(frozen=True)
class Candidate:
    pk: int
    application: App
    status: str = PENDING
    created_at: datetime = T0


WHATSAPP = App(patterns=(r"\bwhats\s?app\b", r"\bwa\b"))
TELEGRAM = App(patterns=(r"\btelegram\b",))
ANY_SMS = App()
REF_CODE = App(otp_pattern=r"ref (\d+)")
PIN_CODE = App(otp_pattern=r"PIN-(\d{2}-\d{2})")


def order(pk: int, application: App, status: str = PENDING, minutes: int = 0) -> Candidate:
    return Candidate(pk, application, status, T0 + timedelta(minutes=minutes))


# --- pattern_hit -------------------------------------------------------------------------

PATTERN_CASES = [
    P((r"\bwhatsapp\b",), "WhatsApp", "Kode 123456", True, id="sender-matches"),
    P((r"\bwhatsapp\b",), "+6281234567890", "Kode WhatsApp: 123456", True, id="text-matches"),
    P((r"\bwhatsapp\b",), "Telegram", "Login code: 12345", False, id="neither-matches"),
    P(("WHATSAPP",), "whatsapp", "", True, id="pattern-case-ignored"),
    P((r"\bwa\b",), "", "KODE wa KAMU 1234", True, id="text-case-ignored"),
    P((r"\btelegram\b", r"\bwa\b"), "", "Kode WA 1234", True, id="second-pattern-matches"),
    P((r"\bwa\b",), "", "Waktu pengiriman 5 menit", False, id="word-boundary-holds"),
    P(("(unclosed", r"\bwa\b"), "WA", "", True, id="invalid-regex-skipped"),
    P(("(unclosed",), "(unclosed", "(unclosed", False, id="only-invalid-regex"),
    P((), "WhatsApp", "Kode WhatsApp 1234", False, id="no-patterns"),
    P((r"\bwa\b",), "", "", False, id="empty-sms"),
]


@pytest.mark.parametrize(("patterns", "sender", "text", "expected"), PATTERN_CASES)
def test_pattern_hit(patterns: tuple[str, ...], sender: str, text: str, expected: bool) -> None:
    assert pattern_hit(patterns, sender, text) is expected


# --- ranked ------------------------------------------------------------------------------

WA_SMS = ("WhatsApp", "Kode WhatsApp Anda: 123-456")

RANK_CASES = [
    P(
        [order(1, ANY_SMS, minutes=0), order(2, WHATSAPP, minutes=5)],
        [2, 1],
        id="pattern-match-beats-older-without-patterns",
    ),
    P(
        [order(1, TELEGRAM), order(2, ANY_SMS, minutes=5)],
        [2],
        id="patterns-that-miss-leave-the-order-out",
    ),
    P(
        [order(1, WHATSAPP, COMPLETED, minutes=0), order(2, WHATSAPP, minutes=5)],
        [2, 1],
        id="pending-before-older-completed",
    ),
    P(
        [order(1, ANY_SMS, minutes=0), order(2, WHATSAPP, COMPLETED, minutes=5)],
        [2, 1],
        id="pattern-match-before-pending",
    ),
    P(
        [order(1, WHATSAPP, minutes=5), order(2, WHATSAPP, minutes=0)],
        [2, 1],
        id="oldest-first",
    ),
    P(
        [order(7, ANY_SMS), order(3, ANY_SMS)],
        [3, 7],
        id="same-age-lower-pk-first",
    ),
    P(
        [
            order(1, ANY_SMS, minutes=0),
            order(2, TELEGRAM, minutes=1),
            order(3, WHATSAPP, COMPLETED, minutes=2),
            order(4, ANY_SMS, COMPLETED, minutes=3),
            order(5, WHATSAPP, minutes=4),
            order(6, ANY_SMS, minutes=5),
        ],
        [5, 3, 1, 6, 4],
        id="all-rules-together",
    ),
    P([order(1, TELEGRAM)], [], id="nothing-matches"),
    P([], [], id="no-candidates"),
]


@pytest.mark.parametrize(("candidates", "expected"), RANK_CASES)
def test_ranked(candidates: list[Candidate], expected: list[int]) -> None:
    assert [c.pk for c in ranked(candidates, *WA_SMS)] == expected


# --- coded -------------------------------------------------------------------------------

CODED_CASES = [
    P(
        [order(1, ANY_SMS), order(2, WHATSAPP, minutes=5)],
        "WhatsApp",
        "Kode WhatsApp Anda: 123-456. Jangan bagikan kode ini.",
        [(2, "123456"), (1, "123456")],
        id="generic-code-in-ranked-order",
    ),
    P(
        [order(1, REF_CODE), order(2, ANY_SMS, minutes=5)],
        "Bank",
        "Ref 998877. Your code is 123456",
        [(1, "998877"), (2, "123456")],
        id="otp-pattern-per-application",
    ),
    P(
        [order(1, ANY_SMS), order(2, PIN_CODE, minutes=5)],
        "",
        "PIN-12-34 untuk login",
        [(2, "1234")],
        id="candidate-without-code-dropped",
    ),
    P(
        [order(1, App(otp_pattern=r"token (\d+)"))],
        "",
        "Kode OTP: 246810",
        [(1, "246810")],
        id="otp-pattern-missing-falls-back",
    ),
    P(
        [order(1, App(otp_pattern="(unclosed"))],
        "",
        "Kode OTP: 246810",
        [(1, "246810")],
        id="invalid-otp-pattern-falls-back",
    ),
    P(
        [order(1, TELEGRAM), order(2, ANY_SMS, minutes=5)],
        "WhatsApp",
        "Kode WhatsApp Anda: 123-456",
        [(2, "123456")],
        id="ranked-out-order-gets-no-code",
    ),
    P(
        [order(1, ANY_SMS), order(2, WHATSAPP)],
        "BCA",
        "Saldo Anda Rp 150.000",
        [],
        id="no-code-no-candidates",
    ),
]


@pytest.mark.parametrize(("candidates", "sender", "text", "expected"), CODED_CASES)
def test_coded(
    candidates: list[Candidate], sender: str, text: str, expected: list[tuple[int, str]]
) -> None:
    assert [(c.pk, code) for c, code in coded(candidates, sender, text)] == expected


# --- expected_code -----------------------------------------------------------------------

EXPECTED_CASES = [
    P(
        [(order(1, REF_CODE), "998877"), (order(2, ANY_SMS), "123456")],
        "Bank",
        "Ref 998877. Your code is 123456",
        "998877",
        id="first-candidates-code",
    ),
    P([], "", "Kode OTP: 246810", "246810", id="no-candidate-generic-code"),
    P([], "Google", "Use 4821 to sign in", "4821", id="no-candidate-sender-counts"),
    P([], "", "Use 4821 to sign in", None, id="no-candidate-no-sender-no-code"),
    P([], "BCA", "Saldo Anda Rp 150.000", None, id="no-candidate-no-code"),
]


@pytest.mark.parametrize(("coded_list", "sender", "text", "expected"), EXPECTED_CASES)
def test_expected_code(
    coded_list: list[tuple[Candidate, str]], sender: str, text: str, expected: str | None
) -> None:
    assert expected_code(coded_list, sender, text) == expected


def test_pending_is_the_order_status_value() -> None:
    assert PENDING == OrderStatus.PENDING
