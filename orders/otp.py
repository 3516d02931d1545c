"""Find the one-time code in an inbound SMS.

Pure Python (no Django): it runs on every message a modem receives. docs/OTP.md tells how it
is measured (a tuning part, tests/data/otp_corpus.jsonl, and a held-out part never tuned on,
tests/data/otp_heldout.jsonl) and how to add a case.

The pipeline is normalise -> exact formats -> candidates -> reject traps -> rank:

1. normalise: NFKC (full-width forms), every Unicode decimal digit to ASCII (Arabic-Indic,
   Devanagari, Thai...), Arabic decimal and thousands separators, no invisible characters,
   one space between words, one newline between lines;
2. exact formats: a WebOTP line (`@example.com #123456`) or a `G-123456` prefix decide alone;
   the Google SMS Retriever app hash (11 characters ending the message) is dropped first, so
   it is never taken as the code;
3. candidates: 4-8 digit runs, split codes (`123-456`, `1234 5678`) and pairs (`12 34 56`,
   `12-34-56`); and, counted only right beside a keyword, the riskier shapes: 3-digit codes,
   runs of 9-12 digits, and letter-and-digit codes in one case (`AB12CD`, `a7k2p9`, never in
   a promotion);
4. traps: amounts, phone numbers and hotlines, USSD codes, dates, times, durations,
   quantities, order and transaction references, card tails and masked numbers, identifiers
   made of parts (`INV/2026/...`) and URLs cover spans of the text, and a candidate touching
   one of them is dropped, except a number the trap read by its shape alone (nine digits as
   "a long number", `31-74-90` as "a date"): that one stays, beside a keyword only;
5. rank: the candidate closest to an OTP keyword, counted in content words (a code after
   its keyword beats one in front of it). Fillers ("is", "Anda", "của bạn"), the sender's
   own name and the product after it ("Steam Guard"), words saying what the code is for
   ("login", "penarikan", "для входа"), its announced length ("9 digit") and the amount it
   approves are no distance. A keyword qualified as something else ("kode promo", "kode
   pos", "Wi-Fi password") does not count, nor does a bare "code" in a promotion (a
   coupon). Failing that, the only candidate of a message that has a keyword or a "do not
   share" warning, if it is not a risky shape; or, from a sender, one handed over by a verb
   ("Use 4821 to sign in"). A lone number with nothing else (a plate, a store, a flight) is
   not a code.
"""

import re
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, replace
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
# Arabic decimal and thousands separators, so that "١٬٢٥٠٫٠٠" reads as the amount 1,250.00.
_ARABIC_SEPARATORS = str.maketrans({"\u066b": ".", "\u066c": ","})
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
# Pairs: "48 20 19", "31-74-90", "12 84 59 30", one separator throughout.
_PAIRS_CODE_RE = re.compile(
    rf"{_NOT_AFTER}(?<!\d[ -])\d\d([ -])\d\d\1\d\d(?:\1\d\d)?{_NOT_BEFORE}(?![ -]\d)"
)
_DIGIT_CODE_RE = re.compile(rf"{_NOT_AFTER}\d{{4,8}}{_NOT_BEFORE}")
# The risky shapes below count only right beside a keyword (`_Candidate.beside_keyword_only`).
_LONG_CODE_RE = re.compile(rf"{_NOT_AFTER}\d{{9,12}}{_NOT_BEFORE}")
_THREE_DIGIT_CODE_RE = re.compile(rf"{_NOT_AFTER}(?<!\d )\d{{3}}{_NOT_BEFORE}(?! \d)")
# Letters and digits in one case, as services print them: "AB12CD", "a7k2p9". A mixed-case
# token is a word, a hash or an id. "@budi2026" is a user name.
_ALNUM_CODE_RE = re.compile(
    r"(?<![A-Za-z0-9@_])"
    r"(?:(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{4,8}"
    r"|(?=[a-z0-9]*\d)(?=[a-z0-9]*[a-z])[a-z0-9]{4,8})"
    r"(?![A-Za-z0-9_])"
)
# Reading order matters: a token already taken by an earlier shape is not read again, so
# "1234 5678" is one split code, not two runs, and "482 019" is not two 3-digit codes.
_CODE_SHAPES = (
    (_SPLIT_CODE_RE, False),
    (_PAIRS_CODE_RE, False),
    (_DIGIT_CODE_RE, False),
    (_LONG_CODE_RE, True),
    (_THREE_DIGIT_CODE_RE, True),
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
# Whole names only where no day comes with them ("Nov 2026", "Desember 2026"): "jangan 4821"
# is not a month.
_MONTH_NAME = (
    r"(?:jan(?:uari|uary)?|feb(?:ruari|ruary)?|mar(?:et|ch)?|apr(?:il)?|mei|may|jun[ie]?"
    r"|jul[iy]?|agu(?:stus)?|aug(?:ust)?|sept?(?:ember)?|o[ck]t(?:ober)?|nov(?:ember)?"
    r"|de[sc](?:ember)?)\.?"
)
_DATE_RE = re.compile(
    r"\b\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}\b"
    r"|\b\d{1,2}/\d{4}\b|\b\d{4}/\d{1,2}\b"
    rf"|\b\d{{1,2}} {_MONTH} \d{{4}}\b"
    rf"|\b{_MONTH} \d{{1,2}},? \d{{4}}\b"
    rf"|\b{_MONTH_NAME},? \d{{4}}\b"
    r"|\b(?:tahun|year|año|ano) \d{4}\b"
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
    r"\b(?:kartu|card|rek|rekening|account|acct|a/c|visa|mastercard|amex|jcb)\b"
    r"(?: (?:kredit|debit|credit|anda|kamu|your|no\.?|number|nomor)){0,2}"
    r" ?[*x•.]* ?\d{4}(?!\d)"
    r"|\b(?:ending|ends|berakhiran|akhiran)(?: (?:in|with|dengan))? ?[*x•.]*\d{3,6}(?!\d)"
    r"|(?<![*•])[*•]{2,}\d{2,6}(?!\d)",
    re.IGNORECASE,
)
# Masked numbers: "****4821", "*7721", "5642****1234", "••• •••• 4821", "XX5821", "x4821".
_MASKED_RE = re.compile(
    r"(?<![\d*•])(?<![*•][ -])\d*[*•]+(?:[ -][*•]+)*[ -]?\d{2,6}(?![\d*])"
    r"|(?<!\d)\d+[*•]{2,}"
    r"|(?<![A-Za-z])(?<![xX][ -])[xX]+(?:[ -][xX]+)*[ -]?\d{2,6}(?![\dA-Za-z])"
)
# USSD codes: "*363*46#", "*888#".
_USSD_RE = re.compile(r"(?<![\d*])\*\d+(?:\*\d+)*#")
# Identifiers made of parts: "INV/20261127/MPL/3719204856", "MBVCB.4829103.NGUYEN".
_IDENTIFIER_RE = re.compile(r"(?<![\w/.])\w+(?:[/.]\w+){2,}")
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
    _MASKED_RE,
    _USSD_RE,
    _IDENTIFIER_RE,
)

# --- Keywords ------------------------------------------------------------------------------

_WORD_KEYWORDS = (
    # English, French, German
    r"otp|codes?|passcode|password|pin|token|tac|verification|verify|one[- ]time|vérification",
    r"(?:bestätigungs|sicherheits|anmelde|zugangs|einmal)code|einmal(?:kennwort|passwort)|kennwort"
    r"|passwort|(?:m|sms|push|chip|photo)tan|(?-i:TAN)(?= (?:für|lautet|ist)\b|:)",
    # Indonesian, Malay, Turkish ("kode", "kod", "kodunuz")
    r"kod\w*|verifikasi|rahasia|sandi|pengesahan|doğrulama|şifre\w*",
    # Spanish, Portuguese
    r"c[oó]digos?|clave|senha|verificaci[oó]n|verifica[cç][aã]o",
    # Vietnamese, Russian
    r"mã|x[aá]c (?:th[uự]c|minh|nh[aậ]n)|код\w*|пароль|подтверждени\w*",
)
# Scripts without spaces (or where \b misbehaves on combining marks) match anywhere.
_SCRIPT_KEYWORDS = (
    "验证码|驗證碼|校验码|校驗碼|动态码|動態碼|认证码|認證碼|确认码|確認碼|密码|密碼|口令",
    # Thai compounds whole ("verification code", "password"), so what follows is the code.
    "コード|認証番号|確認番号|暗証番号|パスワード|인증번호|인증코드|비밀번호|รหัสยืนยัน|รหัสผ่าน|รหัส",
    "رمز|كود|کد|التحقق|كلمة المرور",
    "कोड|ओटीपी|सत्यापन|पासवर्ड",
)
_KEYWORD_RE = re.compile(
    rf"\b(?:{'|'.join(_WORD_KEYWORDS)})\b|{'|'.join(_SCRIPT_KEYWORDS)}", re.IGNORECASE
)
# "kode promo", "promo code", "kode pos": a code, but not a one-time one.
_QUALIFIERS = (
    r"promo\w*|voucher|vocer|kupon|coupon|cupom|cup[oó]n|refer\w*|referal|reff|rujukan|booking"
    r"|pemesanan|pembayaran|bayar|payment|pos|postal|zip|tracking|resi|unik|diskon|discount"
    r"|descuento|desconto|indirim|reward|gift|hadiah|redeem|tiket|ticket|invite|invitation"
    r"|undangan|qr|bar|area|negara|country|undian|lottery|raffle|lucky|wi-?fi"
)
_QUALIFIER_AFTER_RE = re.compile(rf" (?:{_QUALIFIERS})\b", re.IGNORECASE)
_QUALIFIER_BEFORE_RE = re.compile(rf"\b(?:{_QUALIFIERS}) $", re.IGNORECASE)
_QUALIFIER_WINDOW = 20
# In a promotion a bare "code" is a coupon ("order online with code 9193"); only words that
# say "one-time" or "verification" still point at an OTP there.
_WEAK_KEYWORD_RE = re.compile(
    r"codes?|kode|kod\w*|c[oó]digos?|код\w*|mã|كود|कोड|コード", re.IGNORECASE
)
# Letter-and-digit codes in a promotion are voucher codes ("Use code SAVE2026 for 20% off").
_PROMOTION_RE = re.compile(
    r"\b(?:promo\w*|diskon|discount|descuento|desconto|indirim|cashback|voucher|vocer|kupon"
    r"|coupon|hemat|sale|bonus|potongan|ahorr[ae]\w*|economi[sz]e\w*|économisez|sparen"
    r"|tasarruf\w*|tiết kiệm|tiet kiem)\b|\d ?% (?:off|disc)",
    re.IGNORECASE,
)
# "Use 4821 to sign in", "Gunakan 4821 untuk masuk": the verb that hands over a code.
_USAGE_BEFORE_RE = re.compile(
    r"\b(?:use|enter|type|gunakan|pakai|masukkan|ketik|usa|use o|utilize|utiliza|digite"
    r"|введите|kullanın|nhập|gib|geben sie|saisissez|utilisez)\W{0,3}$",
    re.IGNORECASE,
)
_USAGE_WINDOW = 20
# Phrases that mark an OTP message without pointing at the code.
_OTP_HINT_RE = re.compile(
    r"jangan (?:berikan|bagikan|beritahu\w*|memberitahukan|sebarkan|kongsi|dedahkan)"
    r"|do not share|don[’']t share|never share|no (?:lo |la )?compartas|n[ãa]o compartilhe"
    r"|никому|paylaşma|kh[oô]ng (?:chia s[eẻ]|cung c[aấ]p)|请勿|請勿|切勿|ห้ามบอก|อย่า(?:บอก|แชร์"
    r"|เปิดเผย)|لا تشارك|(?:साझा|शेयर) न कर|niemandem|niemals weiter|ne (?:le )?(?:partagez"
    r"|communiquez)",
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
    cua ban la quý khách quy khach
    """.split()
)
# Words that say what the code is for, free in the same way: "kode verifikasi penarikan
# Anda", "código de segurança", "password sementara", "код подтверждения операции".
_PURPOSE_WORDS = frozenset(
    """
    login log-in sign-in security access temporary confirmation account withdrawal
    authentication transaction operation activation masuk keamanan akses sementara akun akaun
    penarikan konfirmasi otentikasi autentikasi transaksi aktivasi acceso seguridad
    confirmación temporal cuenta transacción operación activación acesso segurança confirmação
    temporária temporário conta transação operação ativação sécurité connexion accès
    temporaire compte opération transaktion aktivierung giriş güvenlik işlem işlemi aktivasyon
    входа доступа безопасности операции операция активации giao dịch dich الدخول الأمان التفعيل
    """.split()
)
_FREE_WORDS = _FILLER_WORDS | _PURPOSE_WORDS
# "for" before a purpose word is part of it: "код для входа", "kode untuk masuk".
_PURPOSE_PREPOSITIONS = frozenset("for to untuk utk для para pour für".split())
# Nor is the code's announced length ("kode verifikasi 9 digit kamu: ...") or the amount it
# approves ("Kode otentikasi transaksi Rp 7.500.000 adalah ...").
_LENGTH_RE = re.compile(
    r"(?<!\d)\d{1,2}[ -]?(?:digits?|haneli|chiffres|dígitos|цифр\w*|angka)\b", re.IGNORECASE
)
_NAME_WORD_RE = re.compile(r"[^\W\d_]+")
_PUNCTUATION = ".,;:!?\"'“”‘’«»()[]{}<>*#=/|–—-「」『』【】、，。：；！？·"
_SENTENCE_END_RE = re.compile(r"[.!?。！？।](?:\s|$)")
_NEAR_WORDS = 4
_NEAR_CHARS = 60


@dataclass(frozen=True, slots=True)
class _Candidate:
    start: int
    end: int
    code: str
    # Letters and digits, 3 digits, 9 or more digits, or a number a trap read by its shape
    # alone: such a token is a code only right beside a keyword, never on its own (it is as
    # likely a word, a bank code, an account number or a date).
    beside_keyword_only: bool = False


def extract_otp(text: str, sender: str | None = None, *, pattern: str | None = None) -> str | None:
    """Return the one-time code in an SMS without separators, or None when there is none.

    `pattern` is the application's own regular expression (case-insensitive): when it
    matches, its first group (or the whole match) is the code; when it does not match or
    does not compile, the generic extraction runs. `sender` marks the message as coming
    from a service, which lets a number handed over by a verb ("Use 4821 to sign in") count
    as the code without an OTP keyword.
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
        text = text.translate(_ARABIC_SEPARATORS)
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
    keywords = _keyword_spans(text)
    sender_words = _sender_words(sender)
    candidates = _candidates(text, keywords, sender_words)
    best = _best_near_keyword(text, candidates, keywords, sender_words)
    if best is not None:
        return best.code
    digit_codes = [c for c in candidates if not c.beside_keyword_only]
    if len(digit_codes) != 1:
        return None
    (lone,) = digit_codes
    if keywords or _OTP_HINT_RE.search(text):
        return lone.code
    # From a service, "Use 4821 to log in" needs no keyword; a lone number alone (a plate,
    # a store, a flight) is not enough.
    if sender and _USAGE_BEFORE_RE.search(text, max(0, lone.start - _USAGE_WINDOW), lone.start):
        return lone.code
    return None


def _strip_app_hash(text: str) -> str:
    return _APP_HASH_RE.sub("", text).rstrip()


def _exact_format_code(text: str) -> str | None:
    for regex in (_WEBOTP_RE, _PREFIXED_CODE_RE):
        match = regex.search(text)
        if match:
            return _remove_separators(match.group(1))
    return None


def _candidates(
    text: str, keywords: list[tuple[int, int]], sender_words: frozenset[str]
) -> list[_Candidate]:
    """Every code-shaped token of the text that no trap covers, in reading order.

    A risky shape with no keyword right beside it is dropped before the traps are read: it
    could not win, and most messages then need no trap at all.
    """
    taken = bytearray(len(text))
    found: list[_Candidate] = []
    for regex, beside_keyword_only in _CODE_SHAPES:
        for match in regex.finditer(text):
            start, end = match.span()
            if not any(taken[start:end]):
                taken[start:end] = b"\1" * (end - start)
                code = _remove_separators(match.group())
                found.append(_Candidate(start, end, code, beside_keyword_only))
    if not _PROMOTION_RE.search(text):  # in a promotion, letters and digits are a voucher
        found += [
            _Candidate(m.start(), m.end(), m.group(), beside_keyword_only=True)
            for m in _ALNUM_CODE_RE.finditer(text)
        ]
    found = [
        candidate
        for candidate in found
        if not candidate.beside_keyword_only
        or _is_beside_keyword(text, candidate, keywords, sender_words)
    ]
    if not found:
        return []
    trapped, shape_only = _trap_mask(text, {(c.start, c.end) for c in found if c.code.isdigit()})
    kept = []
    for candidate in found:
        if any(trapped[candidate.start : candidate.end]):
            continue
        if (candidate.start, candidate.end) in shape_only:
            candidate = replace(candidate, beside_keyword_only=True)
        kept.append(candidate)
    return sorted(kept, key=lambda c: c.start)


def _trap_mask(
    text: str, number_spans: set[tuple[int, int]]
) -> tuple[bytearray, set[tuple[int, int]]]:
    """One byte per character, set where an amount, phone, date, reference... lies.

    A trap that covers exactly one of `number_spans` and nothing around it judged the
    number by its shape alone (nine digits are "a long number", "31-74-90" is "a date"):
    it is returned apart, and the number stays a code if a keyword sits right beside it.
    """
    mask = bytearray(len(text))
    shape_only = set()
    for regex in _TRAP_RES:
        for match in regex.finditer(text):
            if match.span() in number_spans:
                shape_only.add(match.span())
            else:
                mask[match.start() : match.end()] = b"\1" * (match.end() - match.start())
    return mask, shape_only


def _keyword_spans(text: str) -> list[tuple[int, int]]:
    promotional = _PROMOTION_RE.search(text) is not None
    spans = []
    for match in _KEYWORD_RE.finditer(text):
        start, end = match.span()
        if promotional and _WEAK_KEYWORD_RE.fullmatch(match.group()):
            continue
        qualified = _QUALIFIER_AFTER_RE.match(text, end) or _QUALIFIER_BEFORE_RE.search(
            text, max(0, start - _QUALIFIER_WINDOW), start
        )
        if not qualified:
            spans.append((start, end))
    return spans


def _sender_words(sender: str | None) -> frozenset[str]:
    """The sender's name, in words: "Kode verifikasi Grab kamu" is no further for it."""
    return frozenset(_NAME_WORD_RE.findall(sender.lower())) if sender else frozenset()


def _best_near_keyword(
    text: str,
    candidates: list[_Candidate],
    keywords: list[tuple[int, int]],
    sender_words: frozenset[str],
) -> _Candidate | None:
    best: tuple[tuple[int, ...], _Candidate] | None = None
    for candidate in candidates:
        closest = _closest_keyword(text, candidate, keywords, sender_words)
        if closest is None:
            continue
        words, direction, distance = closest
        if candidate.beside_keyword_only and words > 0:
            continue
        key = (words, direction, candidate.beside_keyword_only, distance, candidate.start)
        if best is None or key < best[0]:
            best = (key, candidate)
    return best[1] if best is not None else None


def _is_beside_keyword(
    text: str, candidate: _Candidate, keywords: list[tuple[int, int]], sender_words: frozenset[str]
) -> bool:
    closest = _closest_keyword(text, candidate, keywords, sender_words)
    return closest is not None and closest[0] == 0


def _closest_keyword(
    text: str, candidate: _Candidate, keywords: list[tuple[int, int]], sender_words: frozenset[str]
) -> tuple[int, int, int] | None:
    """The closeness (below) of the keyword nearest the candidate, or None if none is near.

    Only the nearest keyword on each side counts: a farther one has the nearer one, and all
    that lies between, in its gap, so it is never closer. Keyword spans come from finditer:
    sorted and disjoint, so their ends are sorted too.
    """
    before = bisect_right(keywords, candidate.start, key=_span_end) - 1
    after = bisect_left(keywords, candidate.end, key=_span_start)
    scores = [
        score
        for index in (before, after)
        if 0 <= index < len(keywords)
        and (score := _closeness(text, candidate, keywords[index], sender_words)) is not None
    ]
    return min(scores, default=None)


def _span_start(span: tuple[int, int]) -> int:
    return span[0]


def _span_end(span: tuple[int, int]) -> int:
    return span[1]


def _closeness(
    text: str, candidate: _Candidate, keyword: tuple[int, int], sender_words: frozenset[str]
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
    words = _content_words(gap, sender_words)
    if words > _NEAR_WORDS:
        return None
    return words, direction, len(gap)


def _content_words(gap: str, sender_words: frozenset[str]) -> int:
    gap = _AMOUNT_RE.sub(" ", _LENGTH_RE.sub(" ", gap))
    tokens = [token for token in (t.strip(_PUNCTUATION) for t in gap.split()) if token]
    words = 0
    naming = False  # inside the sender's name and the product named after it: "Steam Guard"
    for token, following in zip(tokens, [*tokens[1:], ""], strict=False):
        word = token.lower()
        naming = word in sender_words or (naming and token[0].isupper())
        if naming or word in _FREE_WORDS:
            continue
        if word in _PURPOSE_PREPOSITIONS and following.lower() in _PURPOSE_WORDS:
            continue
        words += 1
    return words
