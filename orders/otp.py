"""Find the one-time code in an inbound SMS.

Pure Python (no Django): it runs on every message a modem receives.

The pipeline is normalise -> exact formats -> candidates -> reject traps -> rank:

1. normalise: NFKC, every Unicode decimal digit to ASCII, no invisible characters,
   one space between words, one newline between lines;
2. exact formats: a WebOTP line (`@example.com #123456`) or a `G-123456` prefix decide alone;
   the Google SMS Retriever app hash (11 characters ending the message) is dropped;
3. candidates: 4-8 digit runs, split codes (`123-456`, `1234 5678`) and upper-case
   letter-and-digit codes (`AB12CD`, only right next to a keyword);
4. traps: amounts, phone numbers and hotlines, dates, times, durations, quantities,
   order and transaction references, card tails and URLs cover spans of the text,
   and a candidate touching one of them is dropped;
5. rank: the candidate closest to an OTP keyword, counted in content words (a code after
   its keyword beats one in front of it); failing that, the only digit candidate of a
   message that looks like an OTP message (a keyword, a warning phrase or a sender).
"""

import re
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["extract_otp"]

# --- Normalisation -------------------------------------------------------------------------

# Zero-width characters, soft hyphen and bidirectional controls: invisible, but they split
# digit runs ("12\u200b3456").
_INVISIBLE_RE = re.compile(
    "[\u00ad\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
# CJK full-width punctuation carries its own spacing, so nothing follows it: "583920，5分钟"
# must not read as the decimal 583920,5. Give it a real space before NFKC folds it to ASCII.
_CJK_PUNCTUATION = str.maketrans(
    {"，": ", ", "、": ", ", "。": ". ", "：": ": ", "；": "; ", "！": "! ", "？": "? "}
)
_DASH_RE = re.compile("[\u2010-\u2015\u2212\ufe58\ufe63]")
_LINE_BREAK_RE = re.compile(r"\r\n?|[\u2028\u2029\x0b\x0c\x85]")
_HORIZONTAL_SPACE_RE = re.compile(r"[^\S\n]+")
_BLANK_LINES_RE = re.compile(r" ?\n[\n ]*")
_SEPARATORS_RE = re.compile(r"[\s-]+")

# --- Exact formats -------------------------------------------------------------------------

# https://wicg.github.io/sms-one-time-codes/ : the last line is "@origin #code".
_WEBOTP_RE = re.compile(r"^@[A-Za-z0-9.-]+ +#([A-Za-z0-9-]{3,12})(?![A-Za-z0-9])", re.MULTILINE)
# Google and Facebook put a fixed prefix before the digits ("G-412157", "FB-48213").
_PREFIXED_CODE_RE = re.compile(r"(?<![A-Za-z0-9])(?:G|FB)-(\d{4,8})(?![A-Za-z0-9])")
# The SMS Retriever app hash ends the message: 11 base64 characters. All digits would be a
# phone number and all lower case a word, neither of which is a hash.
_APP_HASH_RE = re.compile(r"(?:^|\s)(?![0-9]+$)(?![a-z]+$)[A-Za-z0-9+/]{11}$")

# --- Candidates ----------------------------------------------------------------------------

# A candidate may not continue a longer number: "1.250.000", "27/11/2026", "12:30", "0812-3456".
_NOT_AFTER = r"(?<![A-Za-z0-9+])(?<!\d[.,:/-])"
_NOT_BEFORE = r"(?![A-Za-z0-9])(?![.,:/-]\d)"
_SPLIT_CODE_RE = re.compile(rf"{_NOT_AFTER}(?<!\d )\d{{3,4}}[ -]\d{{3,4}}{_NOT_BEFORE}(?! \d)")
_DIGIT_CODE_RE = re.compile(rf"{_NOT_AFTER}\d{{4,8}}{_NOT_BEFORE}")
_ALNUM_CODE_RE = re.compile(
    r"(?<![A-Za-z0-9])(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{4,8}(?![A-Za-z0-9])"
)

# --- Traps ---------------------------------------------------------------------------------

# Every pattern that starts with a free-standing number refuses to start inside another one;
# without that, a long run like "1.000.000..." is rescanned from every digit (quadratic).
_NUMBER_START = r"(?<![\d.,])"
_NUMBER = r"\d+(?:[., ]\d{3}(?!\d))*(?:[.,]\d{1,2}(?!\d))?"
_CURRENCY_BEFORE = (
    r"(?:\b(?:rp|idr|usd|sgd|myr|rm|eur|gbp|inr|rs|vnd|thb|php|rub|brl|try|tl|aed|sar)\.?"
    r"|r\$|[$€£¥₹₫฿₺₽])"
)
_CURRENCY_AFTER = (
    r"(?:(?:rupiah|idr|usd|sgd|myr|ringgit|eur|euro|vnd|dong|đồng|đ|baht|rub|руб\w*|tl|lira"
    r"|ribu|rb|jt|juta)\b|[€$₫₽元円]|บาท)"
)
_AMOUNT_RE = re.compile(
    rf"{_CURRENCY_BEFORE} ?{_NUMBER}|{_NUMBER_START}{_NUMBER} ?{_CURRENCY_AFTER}", re.IGNORECASE
)
# Nine or more digits, possibly grouped by single spaces or dashes: phones, accounts, tokens.
_LONG_NUMBER_RE = re.compile(r"\+?\d(?:[ -]?\d){8,}")
_HOTLINE_RE = re.compile(
    r"\b(?:call|hubungi|menghubungi|telp|telepon|tel|phone|hotline|contact|kontak|cs|info"
    r"|halo)\b\.?"
    r"(?: (?:us|kami|at|di|ke|on|cs|call center|customer service|halo"
    r"|(?!(?:OTP|PIN|TAC)\b)(?-i:[A-Z]{2,8}))){0,3}"
    r" ?[:.]? ?\+?\d(?:[ -]?\d)*",
    re.IGNORECASE,
)
# "Reply STOP to 89203", "Balas YA ke 2020": short codes of a subscription.
_SHORT_CODE_RE = re.compile(
    r"\b(?:reply|balas|kirim|send|text|sms|ketik)\b[^\n\d]{0,30}?\b(?:to|ke) \d+",
    re.IGNORECASE,
)
_MONTH = r"(?:jan|feb|mar|apr|mei|may|jun|jul|agu|aug|sep|okt|oct|nov|des|dec)[a-z]*\.?"
_DATE_RE = re.compile(
    r"\b\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}\b"
    r"|\b\d{1,2}/\d{4}\b|\b\d{4}/\d{1,2}\b"
    rf"|\b\d{{1,2}} {_MONTH} \d{{4}}\b"
    rf"|\b{_MONTH} \d{{1,2}},? \d{{4}}\b"
    r"|(?<!\d)\d{4} ?年",
    re.IGNORECASE,
)
_TIME_RE = re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?\b|\b\d{1,2}\.\d{2} ?(?:WIB|WITA|WIT)\b")
_DURATION_RE = re.compile(
    rf"{_NUMBER_START}\d+ ?(?:(?:menit|mnt|minutes?|mins?|detik|dtk|seconds?|secs?|jam|hours?"
    r"|hrs?|hari|days?|minutos?|segundos?|horas?|dakika|saniye|phút|giây|minit|minuten?"
    r"|stunden?|heures?|jours?|минут\w*|мин|час\w*|секунд\w*|сек)\b"
    r"|นาที|ชั่วโมง|วินาที|分钟|分鐘|小时|小時|秒|دقائق|دقيقة|ساعة|मिनट|घंटे)",
    re.IGNORECASE,
)
_QUANTITY_RE = re.compile(
    rf"{_NUMBER_START}\d+(?:[.,]\d+)* ?(?:poin|points?|pts|koin|coins?|gb|mb|kb|sms|persen)\b"
    rf"|{_NUMBER_START}\d+ ?%",
    re.IGNORECASE,
)
_REFERENCE_RE = re.compile(
    r"(?:\b(?:order|pesanan|trx|invoice|inv|resi|awb|booking|pedido|ref|reference|tracking"
    r"|nomor|(?:id|no\.?|nomor) transaksi|transaction id|заказ\w*|sipariş\w*|đơn hàng)\b"
    r"|\bno\.|订单号?|訂單號?)"
    r"(?: ?(?:id|no\.?|number|nomor|anda|kamu|your|#|:)){0,3}"
    r" ?[#:.]? ?(?=[A-Z0-9-]*\d)[A-Z0-9-]+",
    re.IGNORECASE,
)
_CARD_TAIL_RE = re.compile(
    r"\b(?:kartu|card|rek|rekening|account|acct|a/c)\b"
    r"(?: (?:kredit|debit|credit|anda|kamu|your|no\.?|number|nomor)){0,2}"
    r" ?[*x•.]* ?\d{4}(?!\d)"
    r"|\b(?:ending|ends|berakhiran|akhiran)(?: (?:in|with|dengan))? ?[*x•.]*\d{3,6}(?!\d)"
    r"|(?<![*•])[*•]{2,}\d{2,6}(?!\d)",
    re.IGNORECASE,
)
_URL_RE = re.compile(
    r"(?:https?://|www\.)\S+"
    r"|(?<![a-z0-9.-])(?:[a-z0-9-]+\.)+(?:com|id|net|org|co|io|me|ly|app|link|gl|to|my|sg|ru|cn|vn|th"
    r"|tr|br|in)\b(?:/\S*)?",
    re.IGNORECASE,
)
_TRAP_RES = (
    _URL_RE,
    _AMOUNT_RE,
    _LONG_NUMBER_RE,
    _HOTLINE_RE,
    _SHORT_CODE_RE,
    _DATE_RE,
    _TIME_RE,
    _DURATION_RE,
    _QUANTITY_RE,
    _REFERENCE_RE,
    _CARD_TAIL_RE,
)

# --- Keywords ------------------------------------------------------------------------------

_WORD_KEYWORDS = (
    # English, French, German
    r"otp|codes?|passcode|password|pin|token|tac|verification|verify|one[- ]time|vérification",
    r"(?:bestätigungs|sicherheits|anmelde|zugangs|einmal)code",
    # Indonesian, Malay, Turkish ("kode", "kod", "kodunuz")
    r"kod\w*|verifikasi|rahasia|sandi|pengesahan|doğrulama|şifre\w*",
    # Spanish, Portuguese
    r"c[oó]digos?|clave|senha|verificaci[oó]n|verifica[cç][aã]o",
    # Vietnamese, Russian
    r"mã|xác thực|xác minh|код\w*|пароль|подтверждени\w*",
)
# Scripts without spaces (or where \b misbehaves on combining marks) match anywhere.
_SCRIPT_KEYWORDS = (
    "验证码|驗證碼|校验码|校驗碼|动态码|動態碼|认证码|認證碼|确认码|確認碼",
    "コード|認証番号|인증번호|รหัส",
    "رمز|كود|کد|التحقق",
    "कोड|ओटीपी|सत्यापन",
)
_KEYWORD_RE = re.compile(
    rf"\b(?:{'|'.join(_WORD_KEYWORDS)})\b|{'|'.join(_SCRIPT_KEYWORDS)}", re.IGNORECASE
)
# "kode promo", "promo code", "kode pos": a code, but not a one-time one.
_QUALIFIERS = (
    r"promo\w*|voucher|vocer|kupon|coupon|cupom|cup[oó]n|referral|referal|reff|booking"
    r"|pemesanan|pembayaran|bayar|payment|pos|postal|zip|tracking|resi|unik|diskon|discount"
    r"|descuento|desconto|indirim|reward|gift|hadiah|redeem|tiket|ticket|invite|invitation"
    r"|undangan|qr|bar|area|negara|country"
)
_QUALIFIER_AFTER_RE = re.compile(rf" (?:{_QUALIFIERS})\b", re.IGNORECASE)
_QUALIFIER_BEFORE_RE = re.compile(rf"\b(?:{_QUALIFIERS}) $", re.IGNORECASE)
_QUALIFIER_WINDOW = 20
# Letter-and-digit codes in a promotion are voucher codes ("Use code SAVE2026 for 20% off").
_PROMOTION_RE = re.compile(
    r"\b(?:promo\w*|diskon|discount|descuento|desconto|indirim|cashback|voucher|vocer|kupon"
    r"|coupon|hemat|sale)\b|\d ?% (?:off|disc)",
    re.IGNORECASE,
)
# Phrases that mark an OTP message without pointing at the code.
_OTP_HINT_RE = re.compile(
    r"jangan (?:berikan|bagikan|beritahu\w*|memberitahukan|sebarkan|kongsi)"
    r"|do not share|don[’']t share|never share|no (?:lo )?compartas|não compartilhe"
    r"|никому|paylaşmayın|không chia sẻ|请勿|請勿|切勿|ห้ามบอก|لا تشارك",
    re.IGNORECASE,
)

# --- Ranking -------------------------------------------------------------------------------

# Words allowed between a keyword and its code without making the code any further away:
# "code is", "kode Anda:", "验证码为", "รหัสของคุณคือ", "رمز ... هو".
_FILLER_WORDS = frozenset(
    """
    is are was be the a an as your you ur adalah ialah yaitu yakni merupakan sebagai anda
    kamu mu de es est ist lautet é seu sua tu su votre ihr là của bạn ваш ваша ваше
    هو الخاص بك شما 是 为 為 คือ ของคุณ ของคุณคือ है
    """.split()
)
_PUNCTUATION = ".,;:!?\"'“”‘’«»()[]{}<>*#=/|–—-「」『』【】、，。：；！？·"
_SENTENCE_END_RE = re.compile(r"[.!?。！？।](?:\s|$)")
_NEAR_WORDS = 4
_NEAR_CHARS = 60


@dataclass(frozen=True, slots=True)
class _Candidate:
    start: int
    end: int
    code: str
    is_alnum: bool = False


def extract_otp(text: str, sender: str | None = None, *, pattern: str | None = None) -> str | None:
    """Return the one-time code in an SMS without separators, or None when there is none.

    `pattern` is the application's own regular expression (case-insensitive): when it
    matches, its first group (or the whole match) is the code; when it does not match or
    does not compile, the generic extraction runs. `sender` marks the message as coming
    from a service, which lets a lone number count as the code.
    """
    normalised = _normalise(text)
    if not normalised:
        return None
    if pattern:
        code = _code_from_pattern(normalised, pattern)
        if code:
            return code
    return _generic_code(normalised, sender)


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text.translate(_CJK_PUNCTUATION))
    if not text.isascii():
        text = "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)
        text = _INVISIBLE_RE.sub("", text)
        text = _DASH_RE.sub("-", text)
    text = _LINE_BREAK_RE.sub("\n", text)
    text = _HORIZONTAL_SPACE_RE.sub(" ", text)
    return _BLANK_LINES_RE.sub("\n", text).strip()


def _remove_separators(code: str) -> str:
    return _SEPARATORS_RE.sub("", code)


@lru_cache(maxsize=256)
def _compile_pattern(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error:
        return None


def _code_from_pattern(text: str, pattern: str) -> str | None:
    compiled = _compile_pattern(pattern)
    if compiled is None:
        return None
    match = compiled.search(text)
    if match is None:
        return None
    group = match.group(1) if compiled.groups else None
    return _remove_separators(group if group is not None else match.group(0)) or None


def _generic_code(text: str, sender: str | None) -> str | None:
    text = _strip_app_hash(text)
    exact = _exact_format_code(text)
    if exact:
        return exact
    candidates = _candidates(text)
    keywords = _keyword_spans(text)
    best = _best_near_keyword(text, candidates, keywords)
    if best is not None:
        return best.code
    digit_codes = [c for c in candidates if not c.is_alnum]
    looks_like_otp = bool(keywords or sender or _OTP_HINT_RE.search(text))
    if len(digit_codes) == 1 and looks_like_otp:
        return digit_codes[0].code
    return None


def _strip_app_hash(text: str) -> str:
    return _APP_HASH_RE.sub("", text).rstrip()


def _exact_format_code(text: str) -> str | None:
    for regex in (_WEBOTP_RE, _PREFIXED_CODE_RE):
        match = regex.search(text)
        if match:
            return _remove_separators(match.group(1))
    return None


def _candidates(text: str) -> list[_Candidate]:
    """Every code-shaped token of the text that no trap covers, in reading order."""
    trapped = _trap_mask(text)
    taken = bytearray(len(text))  # split codes first: "1234 5678" is one code, not two
    found: list[_Candidate] = []
    for match in _SPLIT_CODE_RE.finditer(text):
        taken[match.start() : match.end()] = b"\1" * (match.end() - match.start())
        found.append(_Candidate(match.start(), match.end(), _remove_separators(match.group())))
    found += [
        _Candidate(m.start(), m.end(), m.group())
        for m in _DIGIT_CODE_RE.finditer(text)
        if not any(taken[m.start() : m.end()])
    ]
    if not _PROMOTION_RE.search(text):
        found += [
            _Candidate(m.start(), m.end(), m.group(), is_alnum=True)
            for m in _ALNUM_CODE_RE.finditer(text)
        ]
    kept = [c for c in found if not any(trapped[c.start : c.end])]
    return sorted(kept, key=lambda c: c.start)


def _trap_mask(text: str) -> bytearray:
    """One byte per character, set where an amount, phone, date, reference... lies."""
    mask = bytearray(len(text))
    for regex in _TRAP_RES:
        for match in regex.finditer(text):
            mask[match.start() : match.end()] = b"\1" * (match.end() - match.start())
    return mask


def _keyword_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _KEYWORD_RE.finditer(text):
        start, end = match.span()
        qualified = _QUALIFIER_AFTER_RE.match(text, end) or _QUALIFIER_BEFORE_RE.search(
            text, max(0, start - _QUALIFIER_WINDOW), start
        )
        if not qualified:
            spans.append((start, end))
    return spans


def _best_near_keyword(
    text: str, candidates: list[_Candidate], keywords: list[tuple[int, int]]
) -> _Candidate | None:
    # Keyword spans come from finditer: sorted and disjoint, so their ends are sorted too.
    starts = [start for start, _ in keywords]
    ends = [end for _, end in keywords]
    best: tuple[tuple[int, ...], _Candidate] | None = None
    for candidate in candidates:
        low = bisect_left(ends, candidate.start - _NEAR_CHARS)
        high = bisect_right(starts, candidate.end + _NEAR_CHARS)
        scores = [
            score
            for keyword in keywords[low:high]
            if (score := _closeness(text, candidate, keyword)) is not None
        ]
        if not scores:
            continue
        words, direction, distance = min(scores)
        if candidate.is_alnum and words > 0:
            continue
        key = (words, direction, candidate.is_alnum, distance, candidate.start)
        if best is None or key < best[0]:
            best = (key, candidate)
    return best[1] if best is not None else None


def _closeness(
    text: str, candidate: _Candidate, keyword: tuple[int, int]
) -> tuple[int, int, int] | None:
    """(content words between, 0 if the code follows the keyword else 1, characters between),
    or None when the two are too far apart or in different sentences."""
    keyword_start, keyword_end = keyword
    if keyword_end <= candidate.start:
        gap, direction = text[keyword_end : candidate.start], 0
    elif candidate.end <= keyword_start:
        gap, direction = text[candidate.end : keyword_start], 1
    else:
        return None
    if len(gap) > _NEAR_CHARS or _SENTENCE_END_RE.search(gap):
        return None
    words = _content_words(gap)
    if words > _NEAR_WORDS:
        return None
    return words, direction, len(gap)


def _content_words(gap: str) -> int:
    words = (token.strip(_PUNCTUATION).lower() for token in gap.split())
    return sum(1 for word in words if word and word not in _FILLER_WORDS)
