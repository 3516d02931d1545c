"""The demo catalogue: real applications Indonesian buyers order virtual numbers for.

Plain data, no Django: `manage.py seed_demo` loads it (WhatsApp first, Telegram second, so
on a fresh database WhatsApp is application 1). Prices are integer rupiah per operator pool
("normal", "promo", "special"); an operator missing from `prices` is not sold for that
application.

`sender_patterns` are matched one by one with `re.search(pattern, sender, re.IGNORECASE)` and
the same against the SMS text (see `orders.services`), so:

* short tokens carry word boundaries (`\\bwa\\b` must not hit "waktu", `\\bovo\\b` must not
  hit a longer word);
* a pattern that must stay case-sensitive despite the global IGNORECASE uses a scoped inline
  flag, `(?-i:...)`. Writing `\\bDANA\\b` alone would be pointless: under IGNORECASE it is
  the same as `\\bdana\\b`;
* `^...$` anchors (no MULTILINE) only ever match a whole sender id such as "DANA" or "X".

Each entry carries an `example_sms` and `example_sender` that the tests use to prove its
patterns catch it and that no other application's patterns do.
"""

from typing import NamedTuple


class DemoApplication(NamedTuple):
    name: str  # display name, e.g. "WhatsApp"
    code: str  # lowercase slug, unique, e.g. "whatsapp"
    prices: dict[str, int]  # operator ("normal", "promo", "special") -> price in rupiah
    sender_patterns: tuple[str, ...]  # case-insensitive regexes for the SMS sender and text
    example_sms: str  # a realistic OTP SMS this service sends
    example_sender: str  # the sender id that SMS arrives from


DEMO_APPLICATIONS: tuple[DemoApplication, ...] = (
    DemoApplication(
        name="WhatsApp",
        code="whatsapp",
        prices={"normal": 6500, "promo": 4500, "special": 9500},
        # "WA" is the everyday Indonesian abbreviation; the boundaries keep "waktu",
        # "wajib", "Jawa" and "WASPADA" out.
        sender_patterns=(r"\bwhats\s?app\b", r"\bwa\b"),
        example_sms="Kode WhatsApp Anda: 123-456. Jangan bagikan kode ini.",
        example_sender="WhatsApp",
    ),
    DemoApplication(
        name="Telegram",
        code="telegram",
        prices={"normal": 5000, "promo": 3500, "special": 8000},
        sender_patterns=(r"\btelegram\b", r"\bt\.me/"),
        example_sms=(
            "Kode Telegram: 52817. Jangan berikan kode ini kepada siapa pun, bahkan jika "
            "mereka mengaku dari Telegram!"
        ),
        example_sender="Telegram",
    ),
    DemoApplication(
        name="Google",
        code="google",
        prices={"normal": 3000, "promo": 2000, "special": 4500},
        sender_patterns=(r"\bgoogle\b", r"\bG-\d{4,8}\b", r"\bgmail\b", r"\byoutube\b"),
        example_sms="G-739204 adalah kode verifikasi Google Anda.",
        example_sender="Google",
    ),
    DemoApplication(
        name="Facebook",
        code="facebook",
        prices={"normal": 2500, "promo": 1500, "special": 4000},
        # "fb" is no Indonesian word; it also catches the "FB-12345" code prefix.
        sender_patterns=(r"\bfacebook\b", r"\bfb\b"),
        example_sms="FB-58213 adalah kode konfirmasi Facebook Anda",
        example_sender="FACEBOOK",
    ),
    DemoApplication(
        name="Instagram",
        code="instagram",
        prices={"normal": 2500, "promo": 1500, "special": 4000},
        # No bare "\big\b": too short to trust in free text; only as a whole sender id.
        sender_patterns=(r"\binstagram\b", r"^ig$"),
        example_sms="Gunakan 394 817 untuk memverifikasi akun Instagram Anda.",
        example_sender="Instagram",
    ),
    DemoApplication(
        name="TikTok",
        code="tiktok",
        prices={"normal": 2500, "promo": 1800, "special": 4000},
        sender_patterns=(r"\btik\s?tok\b",),
        example_sms=(
            "[TikTok] 805214 adalah kode verifikasi Anda, berlaku selama 5 menit. "
            "Jangan bagikan kode ini dengan siapa pun."
        ),
        example_sender="TikTok",
    ),
    DemoApplication(
        name="Shopee",
        code="shopee",
        prices={"normal": 3500, "promo": 2500, "special": 5500},
        # The boundary after "shopee" keeps ShopeePay/ShopeeFood out on purpose.
        sender_patterns=(r"\bshopee\b",),
        example_sms=(
            "[Shopee] JANGAN BERIKAN KODE INI KE SIAPAPUN TERMASUK PIHAK SHOPEE. "
            "KODE VERIFIKASI: 639120. Berlaku 15 menit."
        ),
        example_sender="Shopee",
    ),
    DemoApplication(
        name="Tokopedia",
        code="tokopedia",
        prices={"normal": 3000, "promo": 2000, "special": 5000},
        sender_patterns=(r"\btoko\s?pedia\b", r"\btokped\b"),
        example_sms=(
            "JANGAN MEMBERITAHUKAN KODE RAHASIA INI KE SIAPAPUN termasuk pihak Tokopedia. "
            "Kode verifikasi: 2947. WASPADA PENIPUAN!"
        ),
        example_sender="TOKOPEDIA",
    ),
    DemoApplication(
        name="Gojek",
        code="gojek",
        prices={"normal": 4000, "promo": 3000, "special": 6500},
        sender_patterns=(r"\bgo-?jek\b",),
        example_sms=(
            "<#> Kode verifikasi GOJEK kamu: 5731. JANGAN KASIH kode ini ke siapa pun, "
            "TERMASUK PIHAK GOJEK."
        ),
        example_sender="GOJEK",
    ),
    DemoApplication(
        name="Grab",
        code="grab",
        prices={"normal": 3500, "promo": 2500, "special": 5500},
        # "grab" is an English verb, but rare in the Indonesian SMS a modem receives.
        sender_patterns=(r"\bgrab\b",),
        example_sms=(
            "<#> Kode Grab Anda adalah 4409. Kode ini berlaku selama 5 menit. "
            "Jangan berikan kode ini kepada siapa pun."
        ),
        example_sender="Grab",
    ),
    DemoApplication(
        name="DANA",
        code="dana",
        prices={"normal": 4000, "promo": 3000, "special": 6000},
        # "dana" is also the Indonesian word for "funds" ("Dana masuk Rp 50.000 ..."), so
        # no case-insensitive "\bdana\b". Instead: the "[DANA]" tag, a sender id that is
        # exactly "DANA", or the upper-case brand in the text, kept case-sensitive with
        # "(?-i:...)". Trade-off: an all-caps bank SMS ("DANA MASUK") still matches, and a
        # DANA OTP from another sender that writes the brand as "Dana" is missed.
        sender_patterns=(r"\[dana\]", r"^dana$", r"(?-i:\bDANA\b)"),
        example_sms=(
            "[DANA] JANGAN BERIKAN KODE INI KE SIAPAPUN TERMASUK PIHAK DANA. Kode verifikasi: 8351."
        ),
        example_sender="DANA",
    ),
    DemoApplication(
        name="OVO",
        code="ovo",
        prices={"normal": 3500, "promo": 2500, "special": 5500},
        sender_patterns=(r"\bovo\b",),
        example_sms="JANGAN BERIKAN KODE INI KE SIAPAPUN TERMASUK PIHAK OVO. Kode OTP OVO: 7702.",
        example_sender="OVO",
    ),
    DemoApplication(
        name="LinkAja",
        code="linkaja",
        prices={"normal": 2500, "special": 4000},
        sender_patterns=(r"\blink\s?aja\b",),
        example_sms=(
            "Kode OTP LinkAja Anda: 319574. JANGAN BERIKAN kode ini kepada siapa pun, "
            "termasuk petugas LinkAja."
        ),
        example_sender="LinkAja",
    ),
    DemoApplication(
        name="Lazada",
        code="lazada",
        prices={"normal": 2500, "promo": 1800, "special": 4000},
        sender_patterns=(r"\blazada\b",),
        example_sms=(
            "[Lazada] Kode verifikasi Anda adalah 482031. Kode berlaku 15 menit. "
            "Jangan berikan kode ini ke siapapun."
        ),
        example_sender="Lazada",
    ),
    DemoApplication(
        name="Bukalapak",
        code="bukalapak",
        prices={"normal": 2000, "promo": 1500},
        sender_patterns=(r"\bbukalapak\b",),
        example_sms=(
            "JANGAN BERIKAN kode ini ke siapa pun, termasuk pihak Bukalapak. "
            "Kode verifikasi Bukalapak Anda: 620418."
        ),
        example_sender="BUKALAPAK",
    ),
    DemoApplication(
        name="Blibli",
        code="blibli",
        prices={"normal": 2000, "special": 3500},
        sender_patterns=(r"\bblibli\b",),
        example_sms=(
            "Kode OTP Blibli kamu: 704215. Jangan berikan kode ini ke siapa pun, "
            "termasuk pihak Blibli."
        ),
        example_sender="Blibli",
    ),
    DemoApplication(
        name="Traveloka",
        code="traveloka",
        prices={"normal": 2500, "promo": 1800, "special": 4000},
        sender_patterns=(r"\btraveloka\b",),
        example_sms=(
            "Kode verifikasi Traveloka Anda: 2983. Jangan berikan kode ini kepada siapa pun."
        ),
        example_sender="Traveloka",
    ),
    DemoApplication(
        name="Twitter / X",
        code="twitter",
        prices={"normal": 2000, "promo": 1500, "special": 3500},
        # A bare "x" is everywhere ("2x", "x.000"): only as the whole sender id, or in the
        # service's own phrasing.
        sender_patterns=(
            r"\btwitter\b",
            r"^x$",
            r"\bx\.com\b",
            r"\bX (?:verification|confirmation|login) code\b",
        ),
        example_sms=(
            "918273 is your X verification code. Don't reply to this message with your code."
        ),
        example_sender="X",
    ),
    DemoApplication(
        name="Discord",
        code="discord",
        prices={"normal": 2500, "promo": 1800, "special": 4000},
        sender_patterns=(r"\bdiscord\b",),
        example_sms="Your Discord verification code is: 551902",
        example_sender="Discord",
    ),
    DemoApplication(
        name="LINE",
        code="line",
        prices={"normal": 2000, "promo": 1500},
        # "line" is a common English word ("hotline", "line 2"): the "[LINE]" tag, an exact
        # sender id, or the upper-case brand (case-sensitive) only.
        sender_patterns=(r"\[line\]", r"^line$", r"(?-i:\bLINE\b)"),
        example_sms="[LINE] Kode verifikasi Anda: 4718. Jangan berikan kode ini kepada siapa pun.",
        example_sender="LINE",
    ),
    DemoApplication(
        name="Microsoft",
        code="microsoft",
        prices={"normal": 2500, "promo": 1800, "special": 4000},
        sender_patterns=(r"\bmicrosoft\b", r"\boutlook\b", r"\bhotmail\b", r"\bxbox\b"),
        example_sms="Gunakan 1048273 sebagai kode keamanan akun Microsoft",
        example_sender="Microsoft",
    ),
    DemoApplication(
        name="Amazon",
        code="amazon",
        prices={"normal": 3000, "promo": 2000, "special": 5000},
        sender_patterns=(r"\bamazon\b", r"\baws\b"),
        example_sms="538204 is your Amazon OTP. Do not share it with anyone.",
        example_sender="Amazon",
    ),
    DemoApplication(
        name="Netflix",
        code="netflix",
        prices={"normal": 2000, "special": 3500},
        sender_patterns=(r"\bnetflix\b",),
        example_sms="Kode verifikasi Netflix Anda: 3852. Jangan bagikan kode ini.",
        example_sender="Netflix",
    ),
    DemoApplication(
        name="Kredivo",
        code="kredivo",
        prices={"normal": 4500, "promo": 3500, "special": 7000},
        sender_patterns=(r"\bkredivo\b",),
        example_sms=(
            "Kode OTP Kredivo Anda adalah 603917. JANGAN BERIKAN KODE INI KEPADA SIAPAPUN "
            "termasuk pihak Kredivo."
        ),
        example_sender="Kredivo",
    ),
    DemoApplication(
        name="Akulaku",
        code="akulaku",
        prices={"normal": 4000, "promo": 3000, "special": 6500},
        sender_patterns=(r"\bakulaku\b",),
        example_sms=(
            "[Akulaku] Kode verifikasi Anda: 284619. Jangan beritahukan kode ini kepada siapa pun."
        ),
        example_sender="Akulaku",
    ),
    DemoApplication(
        name="Maxim",
        code="maxim",
        prices={"normal": 2000, "promo": 1500},
        # Maxim is run by Taxsee; the boundary keeps "maximum"/"maksimal" out.
        sender_patterns=(r"\bmaxim\b", r"\btaxsee\b"),
        example_sms="Maxim: kode konfirmasi Anda 4821. Jangan berikan kode ini kepada orang lain.",
        example_sender="Maxim",
    ),
    DemoApplication(
        name="MiChat",
        code="michat",
        prices={"normal": 2500, "promo": 1800, "special": 4000},
        sender_patterns=(r"\bmi\s?chat\b",),
        example_sms="[MiChat] Kode verifikasi Anda adalah 573920. Berlaku 10 menit.",
        example_sender="MiChat",
    ),
    DemoApplication(
        name="WeChat",
        code="wechat",
        prices={"normal": 9000, "promo": 7000, "special": 13000},
        sender_patterns=(r"\bwe\s?chat\b", r"\bweixin\b"),
        example_sms="[WeChat] Your verification code is 736104. Don't share it with anyone.",
        example_sender="WeChat",
    ),
    DemoApplication(
        name="Signal",
        code="signal",
        prices={"normal": 2500, "special": 4000},
        # "signal" is an English word (operator SMS about network signal): the exact sender
        # id or the service's own "Signal code" phrasing only.
        sender_patterns=(r"^signal$", r"\bsignal(?: registration| verification)? code\b"),
        example_sms="Your Signal code: 615-204. Do not share this code.",
        example_sender="Signal",
    ),
    DemoApplication(
        name="Tinder",
        code="tinder",
        prices={"normal": 3500, "promo": 2500, "special": 5500},
        sender_patterns=(r"\btinder\b",),
        example_sms="Your Tinder code is 480213. Don't share.",
        example_sender="Tinder",
    ),
    DemoApplication(
        name="Yahoo",
        code="yahoo",
        prices={"normal": 1500, "special": 2500},
        sender_patterns=(r"\byahoo\b",),
        example_sms="Gunakan 83915 untuk memverifikasi akun Yahoo Anda.",
        example_sender="Yahoo",
    ),
    DemoApplication(
        name="Indodax",
        code="indodax",
        prices={"normal": 5000, "promo": 4000, "special": 8000},
        sender_patterns=(r"\bindodax\b",),
        example_sms=(
            "INDODAX: Kode OTP Anda adalah 902145. JANGAN BERIKAN kode ini kepada siapa pun."
        ),
        example_sender="INDODAX",
    ),
    DemoApplication(
        name="Bigo Live",
        code="bigo-live",
        prices={"normal": 2000, "promo": 1500, "special": 3500},
        sender_patterns=(r"\bbigo\b",),
        example_sms="[BIGO LIVE] Kode verifikasi Anda adalah 3170, berlaku 10 menit.",
        example_sender="BIGO LIVE",
    ),
)

# The sms-activate protocol's service codes of the demo applications, by slug (from its
# own service list; docs/SMS-ACTIVATE.md, section 4). It has none for traveloka, kredivo
# and indodax: bots reach those by their slug.
SERVICE_CODES: dict[str, str] = {
    "whatsapp": "wa",
    "telegram": "tg",
    "google": "go",
    "facebook": "fb",
    "instagram": "ig",
    "tiktok": "lf",
    "shopee": "ka",
    "tokopedia": "xd",
    "gojek": "ni",
    "grab": "jg",
    "dana": "fr",
    "ovo": "xh",
    "linkaja": "aka",
    "lazada": "dl",
    "bukalapak": "kh",
    "blibli": "fk",
    "twitter": "tw",
    "discord": "ds",
    "line": "me",
    "microsoft": "mm",
    "amazon": "am",
    "netflix": "nf",
    "akulaku": "tm",
    "maxim": "ahl",
    "michat": "mc",
    "wechat": "wb",
    "signal": "bw",
    "tinder": "oi",
    "yahoo": "mb",
    "bigo-live": "bl",
}
