"""The demo catalogue is plain data: these tests need no database and no Django."""

import re

import pytest

from orders.catalogue import DEMO_APPLICATIONS, DemoApplication
from orders.matching import pattern_hit

OPERATORS = {"normal", "promo", "special"}
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# An OTP as these services print it: 4-8 digits, or two groups of 3 ("123-456", "123 456").
OTP = re.compile(r"\b(?:\d{4,8}|\d{3}[- ]\d{3})\b")

# (application whose patterns match, application whose example they match) -> why that
# is acceptable. Empty today: every example is caught by its own application only. Add
# an entry here (e.g. Facebook/Instagram if an example ever names Meta) with the reason.
ALLOWED_OVERLAPS: dict[tuple[str, str], str] = {}

# Everyday Indonesian SMS that no application may claim.
ORDINARY_SMS = (
    "Waktu pengiriman 5 menit",
    "Dana masuk Rp 50.000 ke rekening Anda",
    "Dana Anda sudah kami terima, terima kasih.",
    "Wajib lapor: paket Anda sedang dalam pengiriman oleh kurir ke Jawa Barat.",
    "Sisa kuota internet Anda 1,5GB berlaku hingga 30/11. Sinyal lemah? Hubungi 188.",
    "Pulsa Rp 10.000 berhasil diisi. Maksimal 2x transaksi per hari.",
    "Kawan, jangan lupa bayar tagihan listrik bulan ini.",
)


def _hit(app: DemoApplication, sender: str, text: str) -> bool:
    """The rule an inbound SMS is routed by: any pattern, sender or text, ignoring case."""
    return pattern_hit(app.sender_patterns, sender, text)


def _by_code(code: str) -> DemoApplication:
    return next(app for app in DEMO_APPLICATIONS if app.code == code)


def test_at_least_25_applications() -> None:
    assert len(DEMO_APPLICATIONS) >= 25


def test_whatsapp_first_telegram_second_both_with_normal() -> None:
    assert DEMO_APPLICATIONS[0].code == "whatsapp"
    assert DEMO_APPLICATIONS[0].name == "WhatsApp"
    assert DEMO_APPLICATIONS[1].code == "telegram"
    assert DEMO_APPLICATIONS[1].name == "Telegram"
    assert "normal" in DEMO_APPLICATIONS[0].prices
    assert "normal" in DEMO_APPLICATIONS[1].prices


def test_codes_unique_lowercase_slugs() -> None:
    codes = [app.code for app in DEMO_APPLICATIONS]
    assert len(codes) == len(set(codes))
    for code in codes:
        assert SLUG.match(code), code
        assert len(code) <= 50, code


def test_names_unique_and_present() -> None:
    names = [app.name for app in DEMO_APPLICATIONS]
    assert all(name.strip() == name and name for name in names)
    assert len(names) == len(set(names))


def test_every_application_is_a_demo_application() -> None:
    assert all(isinstance(app, DemoApplication) for app in DEMO_APPLICATIONS)


@pytest.mark.parametrize("app", DEMO_APPLICATIONS, ids=lambda app: app.code)
def test_prices_positive_ints_on_known_operators(app: DemoApplication) -> None:
    assert app.prices
    assert set(app.prices) <= OPERATORS
    for operator, price in app.prices.items():
        assert type(price) is int, (operator, price)
        assert price > 0, (operator, price)


@pytest.mark.parametrize("app", DEMO_APPLICATIONS, ids=lambda app: app.code)
def test_promo_cheaper_special_dearer(app: DemoApplication) -> None:
    normal = app.prices.get("normal")
    assert normal is not None
    if "promo" in app.prices:
        assert app.prices["promo"] < normal
    if "special" in app.prices:
        assert app.prices["special"] > normal


def test_at_least_three_applications_lack_an_operator() -> None:
    lacking = [app.code for app in DEMO_APPLICATIONS if set(app.prices) != OPERATORS]
    assert len(lacking) >= 3, lacking


@pytest.mark.parametrize("app", DEMO_APPLICATIONS, ids=lambda app: app.code)
def test_patterns_compile_and_survive_the_one_per_line_storage(app: DemoApplication) -> None:
    # seed_demo joins them with "\n" and the model strips each line.
    assert app.sender_patterns
    for pattern in app.sender_patterns:
        re.compile(pattern, re.IGNORECASE)
        assert pattern == pattern.strip() and "\n" not in pattern, pattern
    assert len(app.sender_patterns) == len(set(app.sender_patterns))


@pytest.mark.parametrize("app", DEMO_APPLICATIONS, ids=lambda app: app.code)
def test_example_matches_its_own_patterns(app: DemoApplication) -> None:
    assert _hit(app, app.example_sender, app.example_sms)


@pytest.mark.parametrize("app", DEMO_APPLICATIONS, ids=lambda app: app.code)
def test_example_sender_and_text_each_match_on_their_own(app: DemoApplication) -> None:
    # Either alone is enough to route the SMS: a sender id that arrives as a bare number
    # still leaves the text, and a terse text still leaves the sender id.
    assert _hit(app, app.example_sender, ""), app.example_sender
    assert _hit(app, "", app.example_sms), app.example_sms


@pytest.mark.parametrize("app", DEMO_APPLICATIONS, ids=lambda app: app.code)
def test_example_sms_carries_a_code(app: DemoApplication) -> None:
    assert OTP.search(app.example_sms), app.example_sms
    assert app.example_sender.strip()


def _overlaps(part: str) -> set[tuple[str, str]]:
    found = set()
    for owner in DEMO_APPLICATIONS:
        for other in DEMO_APPLICATIONS:
            if owner is other:
                continue
            sender, text = (
                (other.example_sender, "") if part == "sender" else ("", other.example_sms)
            )
            if _hit(owner, sender, text):
                found.add((owner.code, other.code))
    return found


def test_no_application_claims_another_applications_sender() -> None:
    unexpected = _overlaps("sender") - set(ALLOWED_OVERLAPS)
    assert not unexpected, sorted(unexpected)


def test_no_application_claims_another_applications_sms() -> None:
    unexpected = _overlaps("sms") - set(ALLOWED_OVERLAPS)
    assert not unexpected, sorted(unexpected)


def test_allowed_overlaps_are_real_and_reasoned() -> None:
    actual = _overlaps("sender") | _overlaps("sms")
    for pair, reason in ALLOWED_OVERLAPS.items():
        assert reason.strip(), pair
        assert pair in actual, f"stale exception {pair}: remove it"


@pytest.mark.parametrize("text", ORDINARY_SMS)
def test_ordinary_indonesian_words_do_not_match_whatsapp(text: str) -> None:
    whatsapp = _by_code("whatsapp")
    assert not _hit(whatsapp, text, text)


@pytest.mark.parametrize("text", ORDINARY_SMS)
def test_ordinary_indonesian_sms_matches_no_application(text: str) -> None:
    claimed = [app.code for app in DEMO_APPLICATIONS if _hit(app, "", text)]
    assert not claimed, claimed


def test_dana_brand_matches_but_the_word_dana_does_not() -> None:
    dana = _by_code("dana")
    assert not _hit(dana, "BNI", "Dana masuk Rp 50.000 ke rekening Anda")
    assert not _hit(dana, "+6281234567890", "dana sebesar Rp 100.000 telah ditransfer")
    assert _hit(dana, "DANA", "")
    assert _hit(dana, "", "[DANA] Kode verifikasi: 1234")
    assert _hit(dana, "", "Kode OTP DANA Anda: 1234")


@pytest.mark.parametrize(
    ("code", "text"),
    [
        ("whatsapp", "Kode WA kamu 123456"),
        ("whatsapp", "https://wa.me/6281234567890"),
        ("google", "G-123456 is your Google verification code."),
        ("gojek", "Kode Go-Jek kamu: 1234"),
        ("tiktok", "Kode Tik Tok Anda 123456"),
        ("telegram", "Login code: 12345. https://t.me/login/12345"),
    ],
)
def test_common_variants_are_caught(code: str, text: str) -> None:
    assert _hit(_by_code(code), "", text)
