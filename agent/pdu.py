"""SMS-DELIVER PDUs (3GPP TS 23.040; alphabets: TS 23.038), decoded and encoded by hand.

Hand-written: python-gsmmodem-new decodes each UCS2 part alone (split emoji -> lone surrogates);
smspdudecoder breaks with bitstring 5 and appends '@' when the last octet has 7 spare bits.

`decode_deliver` reads one PDU as a modem prints it after +CMGL / +CMGR in PDU mode
(AT+CMGF=0); `join_parts` joins the parts of a concatenated message; `encode_deliver` is the
inverse, for a modem simulator and for tests; `tpdu_length` is the <length> a modem prints.
Every malformed PDU raises `PduError` (a `ValueError`), never anything else.
"""

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "Deliver",
    "PduError",
    "decode_deliver",
    "encode_deliver",
    "join_parts",
    "tpdu_length",
]

# The GSM 7-bit default alphabet (TS 23.038 6.2.1), indexed by septet. Index 0x1B is the escape
# to GSM7_EXTENSION, never a character of its own.
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
GSM7_ESCAPE = 0x1B

# The default extension table (TS 23.038 6.2.1.1): the septet that follows an escape.
GSM7_EXTENSION: dict[int, str] = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

_BASIC_CODES = {char: code for code, char in enumerate(GSM7_BASIC) if code != GSM7_ESCAPE}
_EXTENSION_CODES = {char: code for code, char in GSM7_EXTENSION.items()}

_MAX_SEPTETS = 160
_MAX_OCTETS = 140
_MAX_PARTS = 255
_MAX_ADDRESS_DIGITS = 20  # an address value is at most 10 octets
_MAX_ALPHANUMERIC_SEPTETS = 11
_MAX_SMSC_LENGTH = 11  # type-of-address octet + 10 octets of digits
_SEMI_OCTET_SYMBOLS = "0123456789*#abc"  # nibble 0xF is the filler of an odd digit count
_HEX = re.compile(r"[0-9A-Fa-f]*")
_NUMBER = re.compile(r"\+?[0-9]+")

_TON_INTERNATIONAL = 1
_TON_ALPHANUMERIC = 5
_TOA_INTERNATIONAL = 0x91
_TOA_UNKNOWN = 0x81
_TOA_ALPHANUMERIC = 0xD0

_IEI_CONCAT_8BIT = 0x00
_IEI_CONCAT_16BIT = 0x08

_FIRST_OCTET_DELIVER = 0x04  # TP-MTI 00 (SMS-DELIVER), TP-MMS 1 (no more messages waiting)
_UDHI = 0x40

_QUARTER_HOUR = timedelta(minutes=15)


class PduError(ValueError):
    """A PDU that is not a well-formed SMS-DELIVER."""


@dataclass(frozen=True)
class Deliver:
    """One decoded SMS-DELIVER: one part of a message, or the whole of a one-part message.

    `text` of a UCS2 part may end or begin with a lone surrogate (an astral character split
    across parts by the sender); `join_parts` rejoins it, so read texts through it.
    """

    sender: str
    text: str
    timestamp: datetime
    reference: int | None
    parts: int
    part: int
    encoding: str
    smsc: str | None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def octet(self, what: str) -> int:
        return self.take(1, what)[0]

    def take(self, count: int, what: str) -> bytes:
        end = self._at + count
        if end > len(self._data):
            raise PduError(
                f"PDU truncated: {what} needs {count} octet(s) at offset {self._at}, "
                f"only {len(self._data) - self._at} left"
            )
        chunk = self._data[self._at : end]
        self._at = end
        return chunk

    def rest(self) -> bytes:
        chunk = self._data[self._at :]
        self._at = len(self._data)
        return chunk


def _parse_hex(pdu_hex: str) -> bytes:
    text = pdu_hex.strip()
    if not text:
        raise PduError("empty PDU")
    if not _HEX.fullmatch(text):
        raise PduError("PDU is not a hex string")
    if len(text) % 2:
        raise PduError(f"PDU has an odd number of hex digits ({len(text)})")
    return bytes.fromhex(text)


def _decode_gsm7(septets: Sequence[int]) -> str:
    chars: list[str] = []
    escaped = False
    for septet in septets:
        if escaped:
            escaped = False
            if septet in GSM7_EXTENSION:
                chars.append(GSM7_EXTENSION[septet])
            elif septet == GSM7_ESCAPE:
                # TS 23.038: an escape to a further table, which no receiver knows, shows a space.
                chars.append(" ")
            else:
                # TS 23.038: a code missing from the extension table shows its basic character.
                chars.append(GSM7_BASIC[septet])
        elif septet == GSM7_ESCAPE:
            escaped = True
        else:
            chars.append(GSM7_BASIC[septet])
    return "".join(chars)


def _unpack_septets(data: bytes, first: int, end: int) -> list[int]:
    """Septets first..end-1 of packed data (septet i starts at bit 7*i, least significant first)."""
    bits = int.from_bytes(data, "little")
    return [(bits >> (7 * index)) & 0x7F for index in range(first, end)]


def _pack_septets(septets: Sequence[int], prefix: bytes = b"", skip: int = 0) -> bytes:
    """Pack septets after `prefix` octets, the first septet at septet index `skip`."""
    bits = int.from_bytes(prefix, "little")
    for index, septet in enumerate(septets, start=skip):
        bits |= septet << (7 * index)
    return bits.to_bytes((7 * (skip + len(septets)) + 7) // 8, "little")


def _gsm7_codes(text: str) -> list[tuple[int, ...]] | None:
    """The septets of each character, or None when some character is not in the GSM alphabet."""
    codes: list[tuple[int, ...]] = []
    for char in text:
        if char in _BASIC_CODES:
            codes.append((_BASIC_CODES[char],))
        elif char in _EXTENSION_CODES:
            codes.append((GSM7_ESCAPE, _EXTENSION_CODES[char]))
        else:
            return None
    return codes


def _decode_semi_octets(data: bytes, digits: int) -> str:
    nibbles = [nibble for octet in data for nibble in (octet & 0x0F, octet >> 4)]
    return "".join(_SEMI_OCTET_SYMBOLS[n] for n in nibbles[:digits] if n != 0x0F)


def _encode_semi_octets(digits: str) -> bytes:
    nibbles = [int(digit) for digit in digits]
    if len(nibbles) % 2:
        nibbles.append(0x0F)
    return bytes(low | high << 4 for low, high in zip(nibbles[::2], nibbles[1::2], strict=True))


def _decode_address(value: bytes, type_of_address: int, length: int) -> str:
    """An address value; `length` counts its semi-octets (digits, or 4-bit units of septets)."""
    type_of_number = (type_of_address >> 4) & 0x07
    if type_of_number == _TON_ALPHANUMERIC:
        return _decode_gsm7(_unpack_septets(value, 0, length * 4 // 7))
    number = _decode_semi_octets(value, length)
    return "+" + number if type_of_number == _TON_INTERNATIONAL else number


def _decode_timestamp(scts: bytes) -> datetime:
    fields = []
    for octet in scts[:6]:
        tens, units = octet & 0x0F, octet >> 4
        if tens > 9 or units > 9:
            raise PduError(f"TP-SCTS octet {octet:02X} is not two decimal semi-octets")
        fields.append(tens * 10 + units)
    zone = scts[6]
    tens, units = zone & 0x07, zone >> 4
    if units > 9:
        raise PduError(f"TP-SCTS time zone octet {zone:02X} is not decimal")
    quarters = tens * 10 + units
    if zone & 0x08:
        quarters = -quarters
    year, month, day, hour, minute, second = fields
    # Two-digit years: SMS began in the 1990s, so 90-99 are 1990-1999 and 00-89 are 2000-2089.
    year += 1900 if year >= 90 else 2000
    try:
        return datetime(
            year, month, day, hour, minute, second, tzinfo=timezone(quarters * _QUARTER_HOUR)
        )
    except ValueError as error:
        raise PduError(f"TP-SCTS is not a valid time: {error}") from None


def _encode_timestamp(timestamp: datetime) -> bytes:
    offset = timestamp.utcoffset() or timedelta(0)
    quarters, rest = divmod(offset, _QUARTER_HOUR)
    if rest:
        raise ValueError(f"time zone offset {offset} is not a whole number of quarter hours")
    if abs(quarters) > 79:
        raise ValueError(f"time zone offset {offset} does not fit TP-SCTS")
    if not 1990 <= timestamp.year <= 2089:
        raise ValueError(f"year {timestamp.year} does not fit TP-SCTS (1990-2089)")
    fields = (
        timestamp.year % 100,
        timestamp.month,
        timestamp.day,
        timestamp.hour,
        timestamp.minute,
        timestamp.second,
        abs(quarters),
    )
    octets = bytearray((value % 10) << 4 | value // 10 for value in fields)
    if quarters < 0:
        octets[6] |= 0x08
    return bytes(octets)


def _encoding(dcs: int) -> str:
    """The alphabet of a TP-DCS (TS 23.038 4)."""
    group = dcs >> 4
    if group <= 0x07:  # general data coding, and the same marked for automatic deletion
        if dcs & 0x20:
            raise PduError(f"TP-DCS {dcs:02X}: compressed text is not supported")
        return ("gsm7", "8bit", "ucs2", "gsm7")[(dcs >> 2) & 0x03]
    if group == 0x0E:  # message waiting indication, store, UCS2
        return "ucs2"
    if group == 0x0F:  # data coding / message class
        return "8bit" if dcs & 0x04 else "gsm7"
    # 0xC, 0xD: message waiting indication in GSM 7-bit; 0x8-0xB are reserved, which
    # TS 23.038 says a receiver reads as the GSM 7-bit default alphabet.
    return "gsm7"


def _concatenation(header: bytes) -> tuple[int | None, int, int]:
    """(reference, parts, part) from a user data header; (None, 1, 1) when not concatenated."""
    found: tuple[int | None, int, int] = (None, 1, 1)
    at = 0
    while at < len(header):
        if at + 2 > len(header):
            raise PduError("user data header ends inside an information element")
        iei, length = header[at], header[at + 1]
        data = header[at + 2 : at + 2 + length]
        if len(data) < length:
            raise PduError(f"user data header element {iei:02X} runs past the header")
        at += 2 + length
        if iei == _IEI_CONCAT_8BIT and length == 3:
            reference, parts, part = data[0], data[1], data[2]
        elif iei == _IEI_CONCAT_16BIT and length == 4:
            reference, parts, part = data[0] << 8 | data[1], data[2], data[3]
        else:
            continue
        # TS 23.040 9.2.3.24.1: a receiver ignores an element with a zero count or a sequence
        # number past the count; a repeated element: the last one counts.
        if parts and 1 <= part <= parts:
            found = (reference, parts, part)
    return found


def decode_deliver(pdu_hex: str, *, has_smsc: bool = True) -> Deliver:
    """Decode one SMS-DELIVER PDU from its hex string (either case, surrounding whitespace ok).

    With `has_smsc` (the default) the PDU starts with the SMSC field, as +CMGL / +CMGR print it;
    without, it is the bare TPDU. Raises PduError for anything malformed or not an SMS-DELIVER.
    """
    reader = _Reader(_parse_hex(pdu_hex))

    smsc = None
    if has_smsc:
        smsc_length = reader.octet("SMSC length")
        if smsc_length > _MAX_SMSC_LENGTH:
            raise PduError(f"SMSC length {smsc_length} is over {_MAX_SMSC_LENGTH} octets")
        if smsc_length:
            smsc_type = reader.octet("SMSC type of address")
            smsc_value = reader.take(smsc_length - 1, "SMSC number")
            smsc = _decode_address(smsc_value, smsc_type, 2 * len(smsc_value))
            smsc = smsc if smsc.lstrip("+") else None

    first = reader.octet("first octet")
    message_type = first & 0x03
    if message_type != 0:
        name = {1: "SMS-SUBMIT", 2: "SMS-STATUS-REPORT", 3: "a reserved type"}[message_type]
        raise PduError(f"not an SMS-DELIVER: TP-MTI {message_type} is {name}")

    address_length = reader.octet("TP-OA length")
    if address_length > _MAX_ADDRESS_DIGITS:
        raise PduError(f"TP-OA length {address_length} is over {_MAX_ADDRESS_DIGITS}")
    address_type = reader.octet("TP-OA type of address")
    address = reader.take((address_length + 1) // 2, "TP-OA")
    sender = _decode_address(address, address_type, address_length)

    reader.octet("TP-PID")
    encoding = _encoding(reader.octet("TP-DCS"))
    timestamp = _decode_timestamp(reader.take(7, "TP-SCTS"))

    length = reader.octet("TP-UDL")
    if encoding == "gsm7":
        if length > _MAX_SEPTETS:
            raise PduError(f"TP-UDL {length} is over {_MAX_SEPTETS} septets")
        octets = (7 * length + 7) // 8
    else:
        if length > _MAX_OCTETS:
            raise PduError(f"TP-UDL {length} is over {_MAX_OCTETS} octets")
        octets = length
    user_data = reader.rest()
    if len(user_data) < octets:
        raise PduError(
            f"TP-UDL {length} needs {octets} octets of user data, PDU has {len(user_data)}"
        )
    user_data = user_data[:octets]

    reference, parts, part = None, 1, 1
    header_octets = 0
    if first & _UDHI:
        if not user_data:
            raise PduError("TP-UDHI is set but there is no user data")
        header_octets = 1 + user_data[0]
        if header_octets > len(user_data):
            raise PduError(f"user data header of {header_octets} octets is over TP-UDL")
        reference, parts, part = _concatenation(user_data[1:header_octets])

    if encoding == "gsm7":
        # The text starts at the first septet boundary after the header (fill bits between).
        first_septet = (8 * header_octets + 6) // 7
        if first_septet > length:
            raise PduError(f"user data header of {header_octets} octets is over TP-UDL")
        text = _decode_gsm7(_unpack_septets(user_data, first_septet, length))
    else:
        body = user_data[header_octets:]
        if encoding == "8bit":
            text = body.decode("latin-1")
        elif len(body) % 2:
            raise PduError(f"UCS2 text of {len(body)} octets is not a whole number of units")
        else:
            text = body.decode("utf-16-be", "surrogatepass")

    return Deliver(
        sender=sender,
        text=text,
        timestamp=timestamp,
        reference=reference,
        parts=parts,
        part=part,
        encoding=encoding,
        smsc=smsc,
    )


def join_parts(parts: Sequence[Deliver]) -> str:
    """The text of a message from its parts: sorted by part number, surrogate pairs rejoined.

    Missing parts are not waited for: whatever is given is joined, in order. A surrogate left
    alone (its other half in a missing part) becomes U+FFFD.
    """
    joined = "".join(part.text for part in sorted(parts, key=lambda part: part.part))
    return joined.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")


def tpdu_length(pdu_hex: str) -> int:
    """Octets of the TPDU (the PDU after its SMSC field): the <length> of +CMGL / +CMGR / +CMGS."""
    data = _parse_hex(pdu_hex)
    smsc_octets = 1 + data[0]
    if smsc_octets > len(data):
        raise PduError(f"SMSC field of {smsc_octets} octets is longer than the PDU")
    return len(data) - smsc_octets


def _encode_number(number: str, what: str) -> tuple[int, bytes]:
    if not _NUMBER.fullmatch(number):
        raise ValueError(f"{what} {number!r} is not digits with an optional leading '+'")
    digits = number.lstrip("+")
    if len(digits) > _MAX_ADDRESS_DIGITS:
        raise ValueError(f"{what} {number!r} has over {_MAX_ADDRESS_DIGITS} digits")
    toa = _TOA_INTERNATIONAL if number.startswith("+") else _TOA_UNKNOWN
    return len(digits), bytes([toa]) + _encode_semi_octets(digits)


def _encode_sender(sender: str) -> bytes:
    if _NUMBER.fullmatch(sender):
        digits, value = _encode_number(sender, "sender")
        return bytes([digits]) + value
    codes = _gsm7_codes(sender)
    if not sender or codes is None:
        raise ValueError(f"alphanumeric sender {sender!r} is empty or not in the GSM alphabet")
    septets = [septet for code in codes for septet in code]
    if len(septets) > _MAX_ALPHANUMERIC_SEPTETS:
        raise ValueError(f"alphanumeric sender {sender!r} is over 11 septets")
    semi_octets = (7 * len(septets) + 3) // 4
    return bytes([semi_octets, _TOA_ALPHANUMERIC]) + _pack_septets(septets)


def _encode_smsc(smsc: str | None) -> bytes:
    if smsc is None:
        return b"\x00"
    _, value = _encode_number(smsc, "SMSC")
    return bytes([len(value)]) + value


def _concat_header(reference: int, parts: int, part: int, ref16: bool) -> bytes:
    if ref16:
        element = bytes([_IEI_CONCAT_16BIT, 4, reference >> 8, reference & 0xFF, parts, part])
    else:
        element = bytes([_IEI_CONCAT_8BIT, 3, reference, parts, part])
    return bytes([len(element)]) + element


def _split_gsm7(codes: list[tuple[int, ...]], capacity: int) -> list[list[int]]:
    chunks: list[list[int]] = [[]]
    for code in codes:
        # An escape and its character always travel in the same part.
        if len(chunks[-1]) + len(code) > capacity:
            chunks.append([])
        chunks[-1].extend(code)
    return chunks


def _split_ucs2(units: bytes, capacity: int, split_surrogates: bool) -> list[bytes]:
    chunks = []
    at = 0
    while at < len(units):
        end = min(at + 2 * capacity, len(units))
        if not split_surrogates and end < len(units) and 0xD8 <= units[end - 2] <= 0xDB:
            end -= 2  # keep a high surrogate with its low one
        chunks.append(units[at:end])
        at = end
    return chunks


def encode_deliver(
    sender: str,
    text: str,
    timestamp: datetime,
    *,
    smsc: str | None = "6281100000",
    reference: int | None = None,
    ref16: bool = False,
    split_surrogates: bool = False,
) -> list[str]:
    """Encode `text` as the SMS-DELIVER PDUs a modem would print: one uppercase hex PDU a part.

    GSM 7-bit when every character is in the default alphabet or its extension table, else
    UCS2. One part holds 160 septets / 70 UCS2 units; longer texts are split with a concatenation
    header (a 16-bit reference with `ref16`): 153 septets / 67 units a part (152 / 66 with a
    16-bit reference), never splitting an escape sequence, nor a surrogate pair unless
    `split_surrogates` (as some phones and SMSCs do). `reference` defaults to a hash of the text
    and is unused for a one-part text. `sender`: digits with an optional '+' are a number
    (international with '+', else unknown type); anything else is alphanumeric, at most 11
    septets. `smsc`: digits with an optional '+', or None for an empty SMSC field. A naive
    `timestamp` is UTC; its offset must be whole quarter hours.
    """
    smsc_field = _encode_smsc(smsc)
    originator = _encode_sender(sender)
    scts = _encode_timestamp(timestamp)

    header_octets = 1 + (6 if ref16 else 5)
    codes = _gsm7_codes(text)
    gsm7_chunks: list[list[int]] = []
    ucs2_chunks: list[bytes] = []
    if codes is not None:
        if sum(len(code) for code in codes) <= _MAX_SEPTETS:
            gsm7_chunks = [[septet for code in codes for septet in code]]
        else:
            capacity = _MAX_SEPTETS - (8 * header_octets + 6) // 7
            gsm7_chunks = _split_gsm7(codes, capacity)
        count = len(gsm7_chunks)
    else:
        units = text.encode("utf-16-be", "surrogatepass")
        if len(units) <= _MAX_OCTETS:
            ucs2_chunks = [units]
        else:
            capacity = (_MAX_OCTETS - header_octets) // 2
            ucs2_chunks = _split_ucs2(units, capacity, split_surrogates)
        count = len(ucs2_chunks)

    if count > _MAX_PARTS:
        raise ValueError(f"text needs {count} parts, over {_MAX_PARTS}")
    if count > 1:
        limit = 0xFFFF if ref16 else 0xFF
        if reference is None:
            reference = zlib.crc32(text.encode("utf-16-be", "surrogatepass")) & limit
        elif not 0 <= reference <= limit:
            raise ValueError(f"reference {reference} is not in 0..{limit}")

    pdus = []
    for part in range(1, count + 1):
        header = b""
        if reference is not None and count > 1:
            header = _concat_header(reference, count, part, ref16)
        if codes is not None:
            septets = gsm7_chunks[part - 1]
            skip = (8 * len(header) + 6) // 7
            dcs, length = 0x00, skip + len(septets)
            user_data = _pack_septets(septets, header, skip)
        else:
            dcs = 0x08
            user_data = header + ucs2_chunks[part - 1]
            length = len(user_data)
        first = _FIRST_OCTET_DELIVER | (_UDHI if header else 0)
        tpdu = bytes([first]) + originator + bytes([0x00, dcs]) + scts + bytes([length])
        pdus.append((smsc_field + tpdu + user_data).hex().upper())
    return pdus
