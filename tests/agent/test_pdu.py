"""agent/pdu.py: SMS-DELIVER PDUs published by others, hand-built edge cases, round trips."""

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.pdu import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    Deliver,
    PduError,
    decode_deliver,
    encode_deliver,
    join_parts,
    tpdu_length,
)


def tz(hours: int, minutes: int = 0) -> timezone:
    return timezone(timedelta(hours=hours, minutes=minutes))


def single(sender: str, text: str, timestamp: datetime, encoding: str, smsc: str | None) -> Deliver:
    return Deliver(sender, text, timestamp, None, 1, 1, encoding, smsc)


# Sources of the published PDUs below. Each expected value is the source's own; the header
# fields were also checked by hand (breakdowns of a few in the comments).
#   DREAMFABRIC: dreamfabric.com/sms "SMS messages and the PDU format" (mirrored at
#     subnets.ru/saved/sms_pdu_format.html, turbocontrol.com).
#   DIAFAAN: diafaan.com's PDU example, asserted by pmoerenhout/jsmppmodem PduServiceTest
#     (2011-01-11 13:25:41 UTC) and jackkum/PHPPDU.
#   AOSP: aosp-mirror/platform_frameworks_base
#     telephony/tests/telephonytests/src/com/android/internal/telephony/GsmSmsTest.java
#   GSMMODEM: faucamp/python-gsmmodem test/test_pdu.py
#   SMSPDUDECODER: qotto/smspdudecoder README.md
#   WARTHOG: warthog618/sms README.md ("smsdeliver" / "smsdecode" examples)
#   S3SMSF: dsamersoff/s3smsf shared/smsf-pdu.c self-test (PDUs read from a modem in Russia)

# 07 91 7283010010F5: SMSC +27381000015 (11 digits, F-padded) | 04: SMS-DELIVER, TP-MMS |
# 0B C8 7238880900F1: OA of 11 digits, TON 4 (subscriber) NPI 8 (national) -> no '+' |
# 00 00: PID, DCS GSM7 | 99309251619580: 99-03-29 15:16:59, zone 80 -> "08" quarters = +02:00 |
# 0A: ten septets | E8329BFD4697D9EC37: E8 = 1110 1000 -> low 7 bits 1101000 = 'h', ...
HELLOHELLO = "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37"
# 24: SMS-DELIVER with TP-MMS and TP-SRI | 0D D0: 13 semi-octets = 52 bits = 7 septets of an
# alphanumeric (TON 5) address; 7 septets fill 7 octets with 7 spare bits: no eighth '@' |
# 11101131521400: 2011-01-11 13:25:41 +00:00 | 0B: 11 septets "diafaan.com"
DIAFAAN = "0791448720003023240DD0E474D81C0EBB010000111011315214000BE474D81C0EBB5DE3771B"
AOSP_TEST = "07914151551512f2040B916105551511f100006060605130308A04D4F29C0E"
# 44: TP-UDHI | 01 80 05: a one-digit OA "5" of type 0x80 | 00 C8: PID, DCS C8 = message waiting
# (discard) in GSM7 | 7020026195702B: 2007-02-20 16:59:07, zone 2B -> B2: sign bit, 32 quarters
# = -08:00 | 06: six septets = 42 bits, all of them the header 04 010200 02 00 (IE 01, special
# message indication) plus 2 fill bits -> an empty text.
AOSP_VOICEMAIL = "07912180958750F84401800500C87020026195702B06040102000200"
# 64: UDHI, SRI, MMS | 0D D0 E272999D76971B: "beeline", 7 septets in 7 octets whose 7 spare
# bits are CR (1B >> 1 = 0D), the padding of TS 23.038 6.1.2.3.1 (DIAFAAN pads with zeros) |
# 00 08: UCS2 | 22:23:29 +03:00 |
# 37: 55 octets = header 06 08 04 5C25 02 02 (16-bit reference 0x5C25, part 2 of 2) + 24 units.
S3SMSF_BEELINE = (
    "07919736799499F8640DD0E272999D76971B000852207212329221370608045C250202002F006D0079"
    "006200650065002E0070006100670065002E006C0069006E006B002F0074006F007000750070000D000A"
)
S3SMSF_LOREM_1 = (
    "07919712690080F8440B919712890064F9000052303041138521A0050003E10201986F79B90D4AC3E7F53688"
    "FC66BFE5A0799A0E0AB7CB741668FC76CFCB637A995E9783C2E4343C3D1FA7DD6750999DA6B340F33219447E"
    "83CAE9FABCFD2683E8E536FC2D07A5DDE334394DAEBBE9A03A1DC40E8BDFF232A84C0791DFECB7BC0C6A87CF"
    "EE3028CC4EC7EB6117A84A0795DDE936284C06B5D3EE741B642FBBD3E1360B14AFA7E7"
)
LOREM_1 = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis"
)
# AOSP testMultipart: two GSM7 parts, 8-bit reference 0, national OA. Part 1 as published
# carries 28 octets past its TP-UDL (160 septets = 140 octets), which a decoder ignores.
AOSP_MULTIPART = (
    "07916163838408F6440B816105224431F700007060217175830AA0050003"
    "00020162B1582C168BC562B1582C168BC562B1582C168BC562B1582C"
    "168BC562B1582C168BC562B1582C168BC562B1582C168BC562B1582C"
    "168BC562B1582C168BC562B1582C168BC562B1582C168BC562B1582C"
    "168BC562B1582C168BC562B1582C168BC562B1582C168BC562B1582C"
    "168BC562B1582C168BC562B1582C168BC562B1582C168BC562B1582C"
    "168BC562B1582C168BC562B1582C168BC562B1582C168BC562",
    "07916163838408F6440B816105224431F700007060217185000A23050003"
    "00020262B1582C168BC96432994C2693C96432994C2693C96432990C",
)
# WARTHOG: three UCS2 segments as bare TPDUs (no SMSC field), 8-bit reference 0xC0; the third
# ends with U+1F601 as the surrogate pair D83D DE01.
WARTHOG_SEGMENTS = (
    "400B911605935713F20008814080611373238C050003C00301007400680069007300200069007300200061002"
    "000760065007200790020006C006F006E00670020006D0065007300730061006700650020007400680061007400"
    "200064006F006500730020006E006F0074002000660069007400200069006E00200061002000730069006E0067"
    "006C006500200053004D00530020006D0065007300730061",
    "400B911605935713F20008814080611373238C050003C0030200670065002C0020006100740020006C00650061"
    "00730074002000690074002000770069006C006C002000690066002000490020006B0065006500700020006100"
    "6400640069006E00670020006D006F0072006500200074006F0020006900740020006100730020003100360030"
    "002000630068006100720061006300740065007200730020",
    "440B911605935713F200088140806113832344050003C00303006900730020006D006F00720065002000740068"
    "0061006E00200079006F00750020006D00690067006800740020007400680069006E006B0020D83DDE01",
)
WARTHOG_TEXT = (
    "this is a very long message that does not fit in a single SMS message, at least it will "
    "if I keep adding more to it as 160 characters is more than you might think 😁"
)

PUBLISHED = [
    pytest.param(
        HELLOHELLO,
        single(
            "27838890001",
            "hellohello",
            datetime(1999, 3, 29, 15, 16, 59, tzinfo=tz(2)),
            "gsm7",
            "+27381000015",
        ),
        id="dreamfabric-national-sender",
    ),
    pytest.param(
        DIAFAAN,
        single(
            "diafaan",
            "diafaan.com",
            datetime(2011, 1, 11, 13, 25, 41, tzinfo=UTC),
            "gsm7",
            "+447802000332",
        ),
        id="diafaan-alphanumeric-sender",
    ),
    pytest.param(
        AOSP_TEST,  # lower-case hex as published; zone 8A -> A8: sign, 28 quarters = -07:00
        single(
            "+16505551111",
            "Test",
            datetime(2006, 6, 6, 15, 3, 3, tzinfo=tz(-7)),
            "gsm7",
            "+14155551212",
        ),
        id="aosp-addressing",
    ),
    pytest.param(
        # TP-DCS 03: general group, class 3, GSM7
        "07914151551512f2040B916105551511f100036060924180008A0DA8695DAC2E8FE9296A794E07",
        single(
            "+16505551111",
            "(Subject)Test",
            datetime(2006, 6, 29, 14, 8, tzinfo=tz(-7)),
            "gsm7",
            "+14155551212",
        ),
        id="aosp-dcs-class-3",
    ),
    pytest.param(
        "07912160130300F4040B914151245584F600087010807121352B10212200A900AE00680065006C006C006F",
        single(
            "+14154255486",
            "\u2122\u00a9\u00aehello",
            datetime(2007, 1, 8, 17, 12, 53, tzinfo=tz(-8)),
            "ucs2",
            "+12063130004",
        ),
        id="aosp-ucs2",
    ),
    pytest.param(
        "07914151551512f2040B916105551511f100006080615131728A44D4F29C0E2AE3E96537B94C068DD161797"
        "84C2FCB41F4B0985D06B958ADD00FB0E94536AF974974DA6D281BA00E95E26D509B946FC3DBF87A25D56A04",
        single(
            "+16505551111",
            "Test extended character table .,-!?@~_\\/&\"';^|:()<{}>[]=%*+#",
            datetime(2006, 8, 16, 15, 13, 27, tzinfo=tz(-7)),
            "gsm7",
            "+14155551212",
        ),
        id="aosp-extension-table",
    ),
    pytest.param(
        # 04 D0 1100: 4 semi-octets = 2 septets, 0x11 '_' and 0x00 '@' (a real '@', counted)
        "07912160130310F20404D0110041006060627171118A0120",
        single("_@", " ", datetime(2006, 6, 26, 17, 17, 11, tzinfo=tz(-7)), "gsm7", "+12063130012"),
        id="aosp-cphs-voicemail-set",
    ),
    pytest.param(
        "07912160130310F20404D0100041006060627161058A0120",
        single("Δ@", " ", datetime(2006, 6, 26, 17, 16, 50, tzinfo=tz(-7)), "gsm7", "+12063130012"),
        id="aosp-cphs-voicemail-clear",
    ),
    pytest.param(
        AOSP_VOICEMAIL,
        single("5", "", datetime(2007, 2, 20, 16, 59, 7, tzinfo=tz(-8)), "gsm7", "+12085978058"),
        id="aosp-message-waiting-group",
    ),
    pytest.param(
        "06917228195339040B917228214365F700003130805120618005D4F29C2E03",
        single(
            "+27821234567",
            "Test2",
            datetime(2013, 3, 8, 15, 2, 16, tzinfo=tz(2)),
            "gsm7",
            "+2782913593",
        ),
        id="gsmmodem-test2",
    ),
    pytest.param(
        "07915892000000F0040B915892214365F700007040213252242331493A283D0795C3F33C88FE06C9CB6132"
        "885EC6D341EDF27C1E3E97E7207B3A0C0A5241E377BB1D7693E72E",
        single(
            "+85291234567",
            "It is easy to read text messages via AT commands.",
            datetime(2007, 4, 12, 23, 25, 42, tzinfo=tz(8)),
            "gsm7",
            "+85290000000",
        ),
        id="gsmmodem-it-is-easy",
    ),
    pytest.param(
        "06917228195339040B917228214365F70000313062315352800A800D8A5E98D337A910",
        single(
            "+27821234567",
            "@{tést}!",
            datetime(2013, 3, 26, 13, 35, 25, tzinfo=tz(2)),
            "gsm7",
            "+2782913593",
        ),
        id="gsmmodem-escapes-and-leading-at",
    ),
    pytest.param(
        # a concatenation header saying "part 1 of 1", reference C3, national 7-digit OA
        "0591721891F1400781721881F800003160526104848059050003C30101916536FB1DCABEEB2074D85E06"
        "4941B19CAB060319A5C522289C96D3D3ED32286C0FA7D96131BBEC024941B19CAB0603DDD36C36A88C87A7"
        "E565D0DB0D82C55EB0DB4B068BCD5C20",
        Deliver(
            "2781188",
            "Hello!You have R 19.50 FREE airtime available. R 19.50 will expire on 01/07/2013. ",
            datetime(2013, 6, 25, 16, 40, 48, tzinfo=tz(2)),
            0xC3,
            1,
            1,
            "gsm7",
            "+2781191",
        ),
        id="gsmmodem-one-part-concatenated",
    ),
    pytest.param(
        "07916407058099F9040B916407950303F100008921222140140004D4E2940A",
        single(
            "+46705930301",
            "TEST",
            datetime(1998, 12, 22, 12, 4, 41, tzinfo=UTC),
            "gsm7",
            "+46705008999",
        ),
        id="smspdudecoder-readme",
    ),
    pytest.param(
        "07911614220991F1040B911605935713F200008140806113912304D7F79B0E",
        single(
            "+61503975312",
            "Woot",
            datetime(2018, 4, 8, 16, 31, 19, tzinfo=tz(8)),
            "gsm7",
            "+61412290191",
        ),
        id="warthog-woot",
    ),
    pytest.param(
        S3SMSF_BEELINE,
        Deliver(
            "beeline",
            "/mybee.page.link/topup\r\n",
            datetime(2025, 2, 27, 21, 23, 29, tzinfo=tz(3)),
            0x5C25,
            2,
            2,
            "ucs2",
            "+79639749998",
        ),
        id="s3smsf-beeline-16-bit-reference",
    ),
    pytest.param(
        # OA type D1: alphanumeric with NPI 1; 9 semi-octets = 5 septets
        "07919736799499F86409D1D2E910390500085220822155042143060804070B020204350020043E043F0430"
        "04410435043D0021002004110435044004350433043804420435002004410432043E044E00200436043804"
        "37043D044C0021",
        Deliver(
            "RSCHS",
            "е опасен! Берегите свою жизнь!",
            datetime(2025, 2, 28, 12, 55, 40, tzinfo=tz(3)),
            0x070B,
            2,
            2,
            "ucs2",
            "+79639749998",
        ),
        id="s3smsf-alphanumeric-npi-1",
    ),
    pytest.param(
        "07919712690080F8040B919712890064F900085220212193332124041F0440043E043204350440043A0430"
        "002004410432044F043704380020004D00490058",
        single(
            "+79219800469",
            "Проверка связи MIX",
            datetime(2025, 2, 12, 12, 39, 33, tzinfo=tz(3)),
            "ucs2",
            "+79219600088",
        ),
        id="s3smsf-ucs2",
    ),
    pytest.param(
        S3SMSF_LOREM_1,
        Deliver(
            "+79219800469",
            LOREM_1,
            datetime(2025, 3, 3, 14, 31, 58, tzinfo=tz(3)),
            0xE1,
            2,
            1,
            "gsm7",
            "+79219600088",
        ),
        id="s3smsf-gsm7-part-1-of-2",
    ),
    pytest.param(
        "07919712690080F8440B919712890064F900085230300213232150050003E20303044B0020044104420430"
        "044004300435043C0441044F002004380020043F043504470430044204300435043C002004400430043704"
        "3D0443044E0020043504400443043D04340443002E",
        Deliver(
            "+79219800469",
            "ы стараемся и печатаем разную ерунду.",
            datetime(2025, 3, 3, 20, 31, 32, tzinfo=tz(3)),
            0xE2,
            3,
            3,
            "ucs2",
            "+79219600088",
        ),
        id="s3smsf-ucs2-part-3-of-3",
    ),
    pytest.param(
        AOSP_MULTIPART[0],
        Deliver(
            "16502244137",
            "1" * 153,
            datetime(2007, 6, 12, 17, 57, 38, tzinfo=tz(-5)),
            0,
            2,
            1,
            "gsm7",
            "+16363848806",
        ),
        id="aosp-multipart-1-with-trailing-octets",
    ),
]


@pytest.mark.parametrize(("pdu", "expected"), PUBLISHED)
def test_a_published_pdu_decodes_to_what_its_source_says(pdu: str, expected: Deliver) -> None:
    decoded = decode_deliver(pdu)

    assert decoded == expected
    assert decoded.timestamp.utcoffset() == expected.timestamp.utcoffset()


VALID = [param.values[0] for param in PUBLISHED]


@pytest.mark.parametrize("pdu", VALID)
def test_every_proper_prefix_of_a_published_pdu_is_a_pdu_error(pdu: str) -> None:
    # AOSP_MULTIPART[0]'s 28 octets past TP-UDL may go; none of the others.
    whole = len(pdu) - 56 if pdu == AOSP_MULTIPART[0] else len(pdu)
    for end in range(whole):
        with pytest.raises(PduError):
            decode_deliver(pdu[:end])


def test_octets_past_tp_udl_are_ignored() -> None:
    trimmed = AOSP_MULTIPART[0][: -2 * 28]

    assert decode_deliver(trimmed) == decode_deliver(AOSP_MULTIPART[0])
    assert tpdu_length(trimmed) == 19 + 140


def test_hex_in_either_case_with_surrounding_whitespace_decodes_alike() -> None:
    expected = decode_deliver(AOSP_TEST)

    assert decode_deliver(AOSP_TEST.upper()) == expected
    assert decode_deliver(f"  {AOSP_TEST.lower()}\r\n") == expected


def test_a_bare_tpdu_decodes_with_has_smsc_false_and_an_empty_smsc_field_gives_none() -> None:
    bare = decode_deliver(WARTHOG_SEGMENTS[0], has_smsc=False)

    assert bare.smsc is None
    assert decode_deliver("00" + WARTHOG_SEGMENTS[0]) == bare
    assert (bare.reference, bare.parts, bare.part) == (0xC0, 3, 1)


def test_published_ucs2_segments_out_of_order_join_with_their_emoji() -> None:
    parts = [decode_deliver(segment, has_smsc=False) for segment in WARTHOG_SEGMENTS]

    assert join_parts([parts[2], parts[0], parts[1]]) == WARTHOG_TEXT
    assert [part.part for part in parts] == [1, 2, 3]
    assert {(part.reference, part.parts, part.encoding) for part in parts} == {(0xC0, 3, "ucs2")}


def test_published_gsm7_parts_out_of_order_join() -> None:
    parts = [decode_deliver(pdu) for pdu in reversed(AOSP_MULTIPART)]

    assert join_parts(parts) == "1" * 160 + "2" * 21


def test_missing_parts_are_not_waited_for() -> None:
    parts = [decode_deliver(segment, has_smsc=False) for segment in WARTHOG_SEGMENTS]

    assert join_parts([parts[2], parts[0]]) == parts[0].text + parts[2].text
    assert join_parts([]) == ""


# ---------------------------------------------------------------------------------------------
# The GSM 7-bit alphabet


def test_the_basic_table_matches_android_s_copy_of_ts_23_038() -> None:
    # AOSP GsmSmsTest.sBasicTables[0] ("Escape (0x1B) replaced with '@'").
    android = (
        "@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r\u00c5\u00e5\u0394_"
        "\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e@\u00c6\u00e6\u00df\u00c9"
        " !\"#\u00a4%&'()*+,-./0123456789:;<=>?\u00a1ABCDEFGHIJKLMNOPQRSTUVWXYZ\u00c4\u00d6"
        "\u00d1\u00dc\u00a7\u00bfabcdefghijklmnopqrstuvwxyz\u00e4\u00f6\u00f1\u00fc\u00e0"
    )

    assert len(GSM7_BASIC) == 128
    assert GSM7_BASIC.replace("\x1b", "@") == android


def test_the_extension_table_matches_android_s_copy_of_ts_23_038() -> None:
    # AOSP GsmSmsTest.sExtendedTables[0] and sExtendedTableIndexes[0].
    codes = [0x0A, 0x14, 0x28, 0x29, 0x2F, 0x3C, 0x3D, 0x3E, 0x40, 0x65]

    assert GSM7_EXTENSION == dict(zip(codes, "\f^{}\\[~]|\u20ac", strict=True))


def user_data_pdu(dcs: int, length: int, user_data: str, first: int = 0x04) -> str:
    """AOSP_TEST's header (SMSC, OA, PID, SCTS) around other user data."""
    header = f"07914151551512F2{first:02X}0B916105551511F100{dcs:02X}6060605130308A"
    return f"{header}{length:02X}{user_data}"


# Packed septets published by GSMMODEM (TestGsm7) and checked by hand: '[' = ESC 3C, so
# 1B 3C 1B 28 ... packs to 1B DE 06 15 ...
PACKED_GSM7 = [
    pytest.param("[{abc}]~", 13, "1BDE0615168F37A98D6FD303", id="brackets"),
    pytest.param("a[]{}€", 11, "E10D6FE3DBA036A94D19", id="euro-last"),
    # 15 septets = 105 bits in 14 octets: the last octet 00 holds 1 bit and 7 spare zero bits.
    pytest.param("{åΦΓΛΩΠΨΣΘ€}", 15, "1BD44332A1542C174C6653DEA400", id="seven-spare-bits"),
    pytest.param("123456789", 9, "31D98C56B3DD7039", id="digits"),
]


@pytest.mark.parametrize(("text", "septets", "packed"), PACKED_GSM7)
def test_published_packed_septets_decode_without_a_spurious_at(
    text: str, septets: int, packed: str
) -> None:
    assert decode_deliver(user_data_pdu(0x00, septets, packed)).text == text


@pytest.mark.parametrize(
    "last_octet", [pytest.param("00", id="zero-padding"), pytest.param("1A", id="cr-padding")]
)
def test_seven_spare_bits_never_become_a_character(last_octet: str) -> None:
    # "1234567": 7 septets = 49 bits; the 7th octet holds the top bit of '7' (0) and 7 spare
    # bits, padded with zeros (read without TP-UDL: '@') or, per TS 23.038 6.1.2.3.1, with
    # CR 0x0D << 1 = 0x1A.
    pdu = user_data_pdu(0x00, 7, "31D98C56B3DD" + last_octet)

    assert decode_deliver(pdu).text == "1234567"


def test_texts_ending_in_seven_spare_bits_are_encoded_and_decoded_exactly() -> None:
    for count in (7, 15, 159):
        text = "1234567890" * 16
        pdu = encode_deliver("+6281234567890", text[:count], datetime(2024, 1, 1, tzinfo=UTC))[0]

        assert (7 * count) % 8 == 1
        assert decode_deliver(pdu).text == text[:count]


def test_every_extension_character_survives_a_round_trip_in_gsm7() -> None:
    text = "Kode: ^{}\\[~]|€ and a form feed \f."
    parts = [decode_deliver(pdu) for pdu in encode_deliver("AXIS", text, datetime(2024, 1, 1))]

    assert [part.encoding for part in parts] == ["gsm7"]
    assert parts[0].text == text


def test_the_euro_sign_is_escape_then_65() -> None:
    pdu = encode_deliver("12345", "€", datetime(2024, 1, 1, tzinfo=UTC), smsc=None)[0]

    # UDL 2 septets: 1B, 65 -> 0011011 + 1100101 << 7 = 0x329B -> octets 9B 32
    assert pdu.endswith("029B32")


@pytest.mark.parametrize(
    ("septets", "length", "expected"),
    [
        # ESC then 'A' (0x41), not in the extension table: TS 23.038 shows the basic 'A'
        pytest.param("9B20", 2, "A", id="unmapped-escape"),
        # ESC ESC: escape to a further table nobody knows: shown as a space
        pytest.param("9B0D", 2, " ", id="double-escape"),
        # "a" then a lone ESC at the very end (a sender split the sequence): dropped
        pytest.param("E10D", 2, "a", id="trailing-escape"),
    ],
)
def test_odd_escape_sequences_decode_as_ts_23_038_says(
    septets: str, length: int, expected: str
) -> None:
    assert decode_deliver(user_data_pdu(0x00, length, septets)).text == expected


def test_an_extension_character_at_a_part_boundary_moves_whole_to_the_next_part() -> None:
    text = "a" * 152 + "€" + "b" * 10
    parts = [decode_deliver(pdu) for pdu in encode_deliver("BANK", text, datetime(2024, 1, 1))]

    assert [part.text for part in parts] == ["a" * 152, "€" + "b" * 10]
    assert join_parts(parts) == text


# ---------------------------------------------------------------------------------------------
# TP-DCS and addresses


@pytest.mark.parametrize(
    ("dcs", "encoding"),
    [
        pytest.param(0x00, "gsm7", id="00-default"),
        pytest.param(0x04, "8bit", id="04-8bit"),
        pytest.param(0x08, "ucs2", id="08-ucs2"),
        pytest.param(0x0C, "gsm7", id="0C-reserved-alphabet"),
        pytest.param(0x10, "gsm7", id="10-class-0-flash"),
        pytest.param(0x15, "8bit", id="15-8bit-class-1"),
        pytest.param(0x1A, "ucs2", id="1A-ucs2-class-2"),
        pytest.param(0x48, "ucs2", id="48-auto-deletion-ucs2"),
        pytest.param(0x80, "gsm7", id="80-reserved-group"),
        pytest.param(0xC8, "gsm7", id="C8-mwi-discard"),
        pytest.param(0xD0, "gsm7", id="D0-mwi-store"),
        pytest.param(0xE0, "ucs2", id="E0-mwi-store-ucs2"),
        pytest.param(0xF0, "gsm7", id="F0-class-0"),
        pytest.param(0xF6, "8bit", id="F6-8bit-class-2"),
    ],
)
def test_each_data_coding_scheme_reads_its_alphabet(dcs: int, encoding: str) -> None:
    # "Hi" three ways: septets 48 69 -> C8 34; latin-1 48 69; UTF-16 0048 0069
    user_data = {"gsm7": (2, "C834"), "8bit": (2, "4869"), "ucs2": (4, "00480069")}[encoding]

    decoded = decode_deliver(user_data_pdu(dcs, *user_data))

    assert (decoded.encoding, decoded.text) == (encoding, "Hi")


def test_8bit_data_is_read_as_latin_1() -> None:
    assert decode_deliver(user_data_pdu(0x04, 3, "E9FF00")).text == "éÿ\x00"


@pytest.mark.parametrize("dcs", [0x20, 0x24, 0x28, 0x3C, 0x60])
def test_compressed_text_is_a_pdu_error(dcs: int) -> None:
    with pytest.raises(PduError, match="compressed"):
        decode_deliver(user_data_pdu(dcs, 2, "C834"))


@pytest.mark.parametrize(
    ("address", "sender"),
    [
        pytest.param("05812143F5", "12345", id="odd-count-F-padded"),
        pytest.param("03912143", "+123", id="length-wins-over-a-non-F-nibble"),
        pytest.param("0481BA21", "*#12", id="star-and-hash"),
        pytest.param("0481F121", "112", id="F-nibble-inside"),
        pytest.param("0681DCFE21", "abc12", id="a-b-c-nibbles"),
        pytest.param("0A818021436587", "0812345678", id="national-zero"),
        pytest.param("00D0", "", id="empty-alphanumeric"),
    ],
)
def test_originating_addresses_decode_semi_octet_by_semi_octet(address: str, sender: str) -> None:
    pdu = f"0004{address}00004250719003518200"

    assert decode_deliver(pdu).sender == sender


# ---------------------------------------------------------------------------------------------
# Time stamps


SCTS = [
    # GSMMODEM TestTimestamp vectors
    pytest.param(datetime(2015, 11, 27, tzinfo=tz(0)), "51117200000000", id="gsmmodem-utc"),
    pytest.param(datetime(2015, 11, 27, tzinfo=tz(2)), "51117200000080", id="gsmmodem-plus-2"),
    pytest.param(
        datetime(2007, 4, 12, 23, 25, 42, tzinfo=tz(8)), "70402132522423", id="gsmmodem-plus-8"
    ),
    pytest.param(
        datetime(2007, 4, 12, 23, 25, 42, tzinfo=tz(-8)), "7040213252242B", id="gsmmodem-minus-8"
    ),
    # +07:00 (WIB): 28 quarters -> semi-octets 2, 8 -> 82
    pytest.param(datetime(2024, 5, 17, 9, 30, 15, tzinfo=tz(7)), "42507190035182", id="wib"),
    # -03:00: 12 quarters -> 21, sign bit 0x08 -> 29
    pytest.param(datetime(2024, 5, 16, 23, 30, 15, tzinfo=tz(-3)), "42506132035129", id="minus-3"),
    # +05:45 (Nepal): 23 quarters -> 32; -09:30: 38 quarters -> 83 | 08 -> 8B
    pytest.param(
        datetime(2024, 12, 31, 23, 59, 59, tzinfo=tz(5, 45)), "42211332959532", id="plus-5-45"
    ),
    pytest.param(
        datetime(2001, 2, 3, 4, 5, 6, tzinfo=tz(-9, -30)), "1020304050608B", id="minus-9-30"
    ),
]


@pytest.mark.parametrize(("timestamp", "scts"), SCTS)
def test_time_stamps_encode_to_semi_octets_with_their_zone(timestamp: datetime, scts: str) -> None:
    # SMSC 00 | first octet | OA 05 91 2618F2 | PID | DCS -> TP-SCTS from octet 9
    pdu = encode_deliver("+62812", "x", timestamp, smsc=None)[0]

    assert pdu[18:32] == scts


@pytest.mark.parametrize(("timestamp", "scts"), SCTS)
def test_time_stamps_decode_with_their_own_offset(timestamp: datetime, scts: str) -> None:
    decoded = decode_deliver(f"000405912618F20000{scts}0178")

    assert decoded.timestamp == timestamp
    assert decoded.timestamp.utcoffset() == timestamp.utcoffset()


def test_a_naive_time_stamp_is_utc_and_microseconds_are_dropped() -> None:
    pdu = encode_deliver("+62812", "x", datetime(2024, 2, 29, 12, 0, 0, 999_999))[0]

    assert decode_deliver(pdu).timestamp == datetime(2024, 2, 29, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "timestamp",
    [
        datetime(2024, 1, 1, tzinfo=tz(5, 20)),
        datetime(1989, 12, 31, tzinfo=UTC),
        datetime(2090, 1, 1, tzinfo=UTC),
    ],
)
def test_a_time_stamp_scts_cannot_hold_is_a_value_error(timestamp: datetime) -> None:
    with pytest.raises(ValueError):
        encode_deliver("+62812", "x", timestamp)


# ---------------------------------------------------------------------------------------------
# Encoding


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ("+16505551111", "Test", datetime(2006, 6, 6, 15, 3, 3, tzinfo=tz(-7)), "+14155551212"),
            AOSP_TEST.upper(),
            id="aosp-addressing",
        ),
        pytest.param(
            (
                "+14154255486",
                "\u2122\u00a9\u00aehello",
                datetime(2007, 1, 8, 17, 12, 53, tzinfo=tz(-8)),
                "+12063130004",
            ),
            "07912160130300F4040B914151245584F600087010807121352B10212200A900AE00680065006C006C006F",
            id="aosp-ucs2",
        ),
        pytest.param(
            ("+27821234567", "Test2", datetime(2013, 3, 8, 15, 2, 16, tzinfo=tz(2)), "+2782913593"),
            "06917228195339040B917228214365F700003130805120618005D4F29C2E03",
            id="gsmmodem-test2",
        ),
        pytest.param(
            (
                "+85291234567",
                "It is easy to read text messages via AT commands.",
                datetime(2007, 4, 12, 23, 25, 42, tzinfo=tz(8)),
                "+85290000000",
            ),
            "07915892000000F0040B915892214365F700007040213252242331493A283D0795C3F33C88FE06C9CB6132"
            "885EC6D341EDF27C1E3E97E7207B3A0C0A5241E377BB1D7693E72E",
            id="gsmmodem-it-is-easy",
        ),
    ],
)
def test_encoding_reproduces_published_one_part_pdus_byte_for_byte(
    args: tuple[str, str, datetime, str], expected: str
) -> None:
    sender, text, timestamp, smsc = args

    assert encode_deliver(sender, text, timestamp, smsc=smsc) == [expected]


def test_encoding_reproduces_published_concatenated_gsm7_parts() -> None:
    s3smsf = encode_deliver(
        "+79219800469",
        LOREM_1 + " nostrud",
        datetime(2025, 3, 3, 14, 31, 58, tzinfo=tz(3)),
        smsc="+79219600088",
        reference=0xE1,
    )
    text = "1" * 160 + "2" * 21
    aosp_1 = encode_deliver(
        "16502244137",
        text,
        datetime(2007, 6, 12, 17, 57, 38, tzinfo=tz(-5)),
        smsc="+16363848806",
        reference=0,
    )
    aosp_2 = encode_deliver(
        "16502244137",
        text,
        datetime(2007, 6, 12, 17, 58, tzinfo=tz(-5)),
        smsc="+16363848806",
        reference=0,
    )

    assert s3smsf[0] == S3SMSF_LOREM_1
    assert AOSP_MULTIPART[0].startswith(aosp_1[0])  # the published one has trailing octets
    assert aosp_2[1] == AOSP_MULTIPART[1]


@pytest.mark.parametrize(
    ("sender", "address"),
    [
        pytest.param("diafaan", "0DD0E474D81C0EBB01", id="diafaan"),
        pytest.param("_@", "04D01100", id="aosp-cphs"),
        pytest.param("+27821234567", "0B917228214365F7", id="international"),
        pytest.param("0812345", "0781802143F5", id="national"),
    ],
)
def test_senders_encode_as_published(sender: str, address: str) -> None:
    pdu = encode_deliver(sender, "x", datetime(2024, 1, 1), smsc=None)[0]

    assert pdu[4:].startswith(address)


@pytest.mark.parametrize(
    "sender", ["", "ABCDEFGHIJKL", "[[[[[[", "Shop™", "+12345678901234567890123"]
)
def test_a_sender_no_address_can_hold_is_a_value_error(sender: str) -> None:
    with pytest.raises(ValueError):
        encode_deliver(sender, "x", datetime(2024, 1, 1))


def test_an_smsc_that_is_not_a_number_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        encode_deliver("+62812", "x", datetime(2024, 1, 1), smsc="Telkomsel")


def test_gsm7_splits_at_160_septets_and_then_153_per_part_with_an_8_bit_reference() -> None:
    timestamp = datetime(2024, 1, 1, tzinfo=UTC)

    assert len(encode_deliver("+62812", "x" * 160, timestamp)) == 1
    pdus = encode_deliver("+62812", "x" * 161, timestamp, reference=0x42)
    parts = [decode_deliver(pdu) for pdu in pdus]

    assert [len(part.text) for part in parts] == [153, 8]
    assert [(p.reference, p.parts, p.part) for p in parts] == [(0x42, 2, 1), (0x42, 2, 2)]
    assert "A0050003420201" in pdus[0]  # UDL 160, header 05 | 00 03 42 02 01


def test_gsm7_parts_hold_152_septets_with_a_16_bit_reference() -> None:
    pdus = encode_deliver("+62812", "y" * 305, datetime(2024, 1, 1), reference=0x1234, ref16=True)
    parts = [decode_deliver(pdu) for pdu in pdus]

    assert [len(part.text) for part in parts] == [152, 152, 1]
    assert {(part.reference, part.parts) for part in parts} == {(0x1234, 3)}
    assert "A006080412340301" in pdus[0]  # UDL 160, header 06 | 08 04 1234 03 01


def test_ucs2_splits_at_70_units_and_then_67_per_part() -> None:
    timestamp = datetime(2024, 1, 1)

    assert len(encode_deliver("+62812", "ж" * 70, timestamp)) == 1
    parts = [decode_deliver(pdu) for pdu in encode_deliver("+62812", "ж" * 71, timestamp)]
    parts16 = [
        decode_deliver(pdu) for pdu in encode_deliver("+62812", "ж" * 71, timestamp, ref16=True)
    ]

    assert [len(part.text) for part in parts] == [67, 4]
    assert [len(part.text) for part in parts16] == [66, 5]


def test_an_emoji_in_one_ucs2_part_decodes_whole() -> None:
    text = "Kode OTP kamu 482913 😀 jangan dibagikan"
    (pdu,) = encode_deliver("WhatsApp", text, datetime(2024, 1, 1, tzinfo=tz(7)))
    decoded = decode_deliver(pdu)

    assert (decoded.sender, decoded.encoding, decoded.text) == ("WhatsApp", "ucs2", text)
    assert join_parts([decoded]) == text


def test_a_surrogate_pair_is_kept_in_one_part_by_default() -> None:
    text = "x" * 66 + "😀" + "y" * 10
    parts = [decode_deliver(pdu) for pdu in encode_deliver("+62812", text, datetime(2024, 1, 1))]

    assert [part.text for part in parts] == ["x" * 66, "😀" + "y" * 10]


def test_an_emoji_split_across_two_ucs2_parts_is_rejoined() -> None:
    text = "x" * 66 + "😀" + "y" * 10
    pdus = encode_deliver("+62812", text, datetime(2024, 1, 1), split_surrogates=True)
    first, second = (decode_deliver(pdu) for pdu in pdus)

    assert first.text == "x" * 66 + "\ud83d"  # the high surrogate alone, at unit 67
    assert second.text == "\ude00" + "y" * 10
    with pytest.raises(UnicodeEncodeError):
        (first.text + second.text).encode("utf-8")  # what decoding each part alone gives
    assert join_parts([second, first]) == text


def test_a_surrogate_whose_other_half_is_missing_becomes_a_replacement_character() -> None:
    text = "x" * 66 + "😀" + "y" * 10
    pdus = encode_deliver("+62812", text, datetime(2024, 1, 1), split_surrogates=True)

    assert join_parts([decode_deliver(pdus[0])]) == "x" * 66 + "\ufffd"


def test_the_default_reference_is_deterministic_and_follows_the_text() -> None:
    timestamp = datetime(2024, 1, 1)

    def reference(text: str, ref16: bool = False) -> int | None:
        return decode_deliver(encode_deliver("+62812", text, timestamp, ref16=ref16)[0]).reference

    assert reference("a" * 200) == reference("a" * 200)
    assert reference("a" * 200) != reference("b" * 200)
    assert reference("a" * 50) is None
    assert reference("a" * 200, ref16=True) == reference("a" * 200, ref16=True)


@pytest.mark.parametrize(("reference", "ref16"), [(256, False), (-1, False), (65536, True)])
def test_a_reference_out_of_range_is_a_value_error(reference: int, ref16: bool) -> None:
    with pytest.raises(ValueError):
        encode_deliver("+62812", "z" * 200, datetime(2024, 1, 1), reference=reference, ref16=ref16)


def test_a_text_over_255_parts_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        encode_deliver("+62812", "z" * (153 * 255 + 1), datetime(2024, 1, 1))


def test_an_empty_text_is_one_empty_part() -> None:
    (pdu,) = encode_deliver("+62812", "", datetime(2024, 1, 1))

    assert decode_deliver(pdu).text == ""


# ---------------------------------------------------------------------------------------------
# tpdu_length


@pytest.mark.parametrize(
    ("pdu", "length"),
    [
        # 9cbs.com/read-46256.html "SMS PDU mode ... length calculation": AT+CMGS=17 for both
        pytest.param("0011000781214356F70000AA05E8329BFD06", 17, id="empty-smsc"),
        pytest.param(
            "079194710167000011000781214365F700F6AA0568656C6C6F",
            17,
            id="with-smsc",
        ),
        pytest.param(HELLOHELLO, 28, id="dreamfabric"),
    ],
)
def test_tpdu_length_counts_the_octets_after_the_smsc_field(pdu: str, length: int) -> None:
    assert tpdu_length(pdu) == length


@pytest.mark.parametrize("pdu", ["", "0", "zz", "07915892", "FF00"])
def test_tpdu_length_of_a_malformed_pdu_is_a_pdu_error(pdu: str) -> None:
    with pytest.raises(PduError):
        tpdu_length(pdu)


# ---------------------------------------------------------------------------------------------
# Malformed PDUs


MALFORMED = [
    pytest.param("", "empty", id="empty"),
    pytest.param("   ", "empty", id="blank"),
    pytest.param(HELLOHELLO[:-1], "odd number", id="odd-length"),
    pytest.param(
        "07917283010010F5040BC87238880900F1000099309251619580zz", "not a hex", id="non-hex"
    ),
    pytest.param(HELLOHELLO[:20] + " " + HELLOHELLO[20:], "not a hex", id="inner-space"),
    pytest.param("0791448720003023", "truncated", id="smsc-only"),
    pytest.param(HELLOHELLO[:40], "truncated", id="truncated-in-the-scts"),
    # GSMMODEM: an SMS-SUBMIT (www.diafaan.com) and an SMS-STATUS-REPORT
    pytest.param(
        "07911326040000F0310D0B911326880736F40000A90FF7FBDD454E87CDE1B0DB357EB701",
        "SMS-SUBMIT",
        id="sms-submit",
    ),
    pytest.param(
        "0006D60B911326880736F4111011719551401110117195714000",
        "SMS-STATUS-REPORT",
        id="status-report",
    ),
    pytest.param("0003", "TP-MTI 3", id="reserved-type"),
    # hellohello with TP-UDL 0B: 11 septets need 10 octets, 9 are there
    pytest.param(HELLOHELLO.replace("800AE8", "800BE8"), "needs 10 octets", id="udl-too-long"),
    pytest.param(user_data_pdu(0x00, 161, "00" * 141), "over 160 septets", id="udl-over-160"),
    pytest.param(user_data_pdu(0x08, 141, "00" * 141), "over 140 octets", id="udl-over-140"),
    pytest.param(user_data_pdu(0x08, 3, "004800"), "whole number", id="ucs2-odd-octets"),
    pytest.param(user_data_pdu(0x08, 2, "0500", first=0x44), "header", id="udh-past-udl"),
    pytest.param(user_data_pdu(0x00, 0, "", first=0x44), "no user data", id="udhi-without-ud"),
    pytest.param(user_data_pdu(0x08, 4, "03000301", first=0x44), "runs past", id="ie-past-udh"),
    pytest.param(user_data_pdu(0x08, 2, "0100", first=0x44), "ends inside", id="ie-cut"),
    # a header of 7 octets needs 8 septets; TP-UDL says 7
    pytest.param(user_data_pdu(0x00, 7, "06080412340201", first=0x44), "header", id="udh-gsm7"),
    pytest.param(HELLOHELLO.replace("9930925161", "9931925161"), "not a valid time", id="month-13"),
    pytest.param(HELLOHELLO.replace("9930925161", "99309251A1"), "decimal", id="scts-hex-digit"),
    pytest.param(HELLOHELLO.replace("95800A", "95A00A"), "time zone", id="zone-hex-digit"),
    pytest.param(HELLOHELLO.replace("040BC8", "0415C8"), "TP-OA length 21", id="oa-too-long"),
    pytest.param("0C" + HELLOHELLO[2:], "SMSC length 12", id="smsc-too-long"),
]


@pytest.mark.parametrize(("pdu", "message"), MALFORMED)
def test_a_malformed_pdu_is_a_pdu_error_with_a_clear_message(pdu: str, message: str) -> None:
    with pytest.raises(PduError, match=message):
        decode_deliver(pdu)


def test_a_pdu_error_is_a_value_error() -> None:
    assert issubclass(PduError, ValueError)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        # TS 23.040 9.2.3.24.1: zero parts, or a part past the count: the element is ignored
        pytest.param("050003420000", (None, 1, 1), id="zero-parts"),
        pytest.param("050003420203", (None, 1, 1), id="part-past-count"),
        pytest.param("050003420200", (None, 1, 1), id="part-zero"),
        pytest.param("0400024202", (None, 1, 1), id="wrong-length"),
        # the last of repeated elements counts; other elements are skipped
        pytest.param("0B0003110201080412340302", (0x1234, 3, 2), id="last-wins"),
        pytest.param("0B0504000000000003420201", (0x42, 2, 1), id="port-then-concat"),
    ],
)
def test_concatenation_elements_are_read_as_ts_23_040_says(
    header: str, expected: tuple[int | None, int, int]
) -> None:
    user_data = header + "0048"
    decoded = decode_deliver(user_data_pdu(0x08, len(user_data) // 2, user_data, first=0x44))

    assert (decoded.reference, decoded.parts, decoded.part) == expected
    assert decoded.text == "H"


# ---------------------------------------------------------------------------------------------
# Properties


GSM7_CHARS = [c for c in GSM7_BASIC if c != "\x1b"] + list(GSM7_EXTENSION.values())
TIMESTAMPS = st.datetimes(
    min_value=datetime(1990, 1, 1),
    max_value=datetime(2089, 12, 31, 23, 59, 59),
    timezones=st.integers(-79, 79).map(lambda quarters: timezone(timedelta(minutes=15 * quarters))),
).map(lambda timestamp: timestamp.replace(microsecond=0))
NUMBERS = st.from_regex(r"\+?[0-9]{1,20}", fullmatch=True)
ALPHANUMERIC = st.text(st.sampled_from(GSM7_CHARS), min_size=1, max_size=11).filter(
    lambda sender: (
        not sender.lstrip("+").isdigit()
        and len(sender) + sum(c in GSM7_EXTENSION.values() for c in sender) <= 11
    )
)
# Any Unicode text (no lone surrogates: no valid text has them), astral characters favoured.
ANY_TEXT = st.text(
    st.one_of(st.characters(codec="utf-8"), st.sampled_from("😀🙂👍🏽€[]{}^~|\\\fжé")),
    max_size=400,
)


def decode_all(pdus: list[str]) -> list[Deliver]:
    parts = [decode_deliver(pdu) for pdu in pdus]
    assert [part.part for part in parts] == list(range(1, len(pdus) + 1))
    assert {part.parts for part in parts} == {len(pdus)}
    assert len({part.reference for part in parts}) == 1
    for pdu in pdus:
        assert tpdu_length(pdu) <= 23 + 140  # first octet to TP-UDL: 23 octets at most
    return parts


@given(
    text=ANY_TEXT,
    sender=st.one_of(NUMBERS, ALPHANUMERIC),
    timestamp=TIMESTAMPS,
    ref16=st.booleans(),
    split_surrogates=st.booleans(),
    order=st.randoms(use_true_random=False),
)
@settings(deadline=None)
def test_any_text_round_trips_through_its_parts(
    text: str,
    sender: str,
    timestamp: datetime,
    ref16: bool,
    split_surrogates: bool,
    order: random.Random,
) -> None:
    pdus = encode_deliver(sender, text, timestamp, ref16=ref16, split_surrogates=split_surrogates)
    parts = decode_all(pdus)
    order.shuffle(parts)

    assert join_parts(parts) == text
    assert {(part.sender, part.timestamp, part.smsc) for part in parts} == {
        (sender, timestamp, "6281100000")
    }
    assert {part.timestamp.utcoffset() for part in parts} == {timestamp.utcoffset()}


@given(text=st.text(st.sampled_from(GSM7_CHARS), max_size=700), ref16=st.booleans())
@settings(deadline=None)
def test_gsm_alphabet_text_round_trips_in_gsm7(text: str, ref16: bool) -> None:
    def septets(text: str) -> int:
        return len(text) + sum(c in GSM7_EXTENSION.values() for c in text)

    parts = decode_all(encode_deliver("+6281234", text, datetime(2024, 1, 1), ref16=ref16))

    assert {part.encoding for part in parts} == {"gsm7"}
    assert "".join(part.text for part in parts) == text
    if septets(text) <= 160:
        assert len(parts) == 1
    else:
        assert all(septets(part.text) <= (152 if ref16 else 153) for part in parts)


@given(data=st.binary(max_size=200), has_smsc=st.booleans())
def test_random_bytes_give_a_deliver_or_a_pdu_error(data: bytes, has_smsc: bool) -> None:
    try:
        decoded = decode_deliver(data.hex(), has_smsc=has_smsc)
    except PduError:
        return
    assert isinstance(decoded, Deliver)
    join_parts([decoded])


@given(text=st.text(max_size=30))
def test_random_text_gives_a_deliver_or_a_pdu_error(text: str) -> None:
    for function in (decode_deliver, tpdu_length):
        try:
            function(text)
        except PduError:
            pass


@given(pdu=st.sampled_from(VALID), has_smsc=st.booleans(), data=st.data())
def test_a_corrupted_published_pdu_gives_a_deliver_or_a_pdu_error(
    pdu: str, has_smsc: bool, data: st.DataObject
) -> None:
    raw = bytearray.fromhex(pdu)
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(0, len(raw)))]

    try:
        decoded = decode_deliver(raw.hex(), has_smsc=has_smsc)
    except PduError:
        return
    assert isinstance(decoded, Deliver)
    join_parts([decoded])
