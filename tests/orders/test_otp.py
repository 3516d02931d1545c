"""Tests for orders.otp.extract_otp: one table of real-looking SMS, one of app patterns, and
garbage input that must stay linear."""

import time

import pytest

from orders.otp import extract_otp

P = pytest.param

CASES = [
    # --- WhatsApp -------------------------------------------------------------------------
    P(
        "Kode WhatsApp Anda: 123-456. Jangan bagikan kode ini.",
        None,
        "123456",
        id="whatsapp-id",
    ),
    P(
        "Your WhatsApp code: 123-456\n\nDon't share this code with others\n4sgLq1p5sV6",
        None,
        "123456",
        id="whatsapp-en-app-hash",
    ),
    P(
        "<#> Your WhatsApp code: 654-321\nYou can also tap this link to verify your phone: "
        "v.whatsapp.com/654321\nDon't share this code with others\n4sgLq1p5sV6",
        "WhatsApp",
        "654321",
        id="whatsapp-link",
    ),
    P("Tu código de WhatsApp: 246-810", None, "246810", id="whatsapp-es"),
    # --- Telegram -------------------------------------------------------------------------
    P(
        "Telegram code: 12345\n\nYou can also tap on this link to log in:\n"
        "https://t.me/login/12345",
        None,
        "12345",
        id="telegram-en",
    ),
    P("Kode Telegram: 54321", None, "54321", id="telegram-id"),
    P(
        "Kode Telegram Anda: 62718\n\nJangan berikan kode ini kepada siapa pun, meskipun "
        "mereka mengaku dari Telegram!",
        None,
        "62718",
        id="telegram-id-warning",
    ),
    # --- Google, Facebook and other global services ---------------------------------------
    P("G-412157 is your Google verification code.", None, "412157", id="google-en"),
    P("G-098765 adalah kode verifikasi Google Anda.", None, "098765", id="google-id"),
    P("123456 is your Facebook code", None, "123456", id="facebook"),
    P("FB-48213 is your Facebook confirmation code", None, "48213", id="facebook-prefix"),
    P("Use 284 615 to verify your Instagram account.", None, "284615", id="instagram"),
    P("Use 739201 as Microsoft account security code", None, "739201", id="microsoft"),
    P(
        "[TikTok] 482910 is your verification code, valid for 5 minutes. To keep your "
        "account safe, never forward this code.",
        None,
        "482910",
        id="tiktok",
    ),
    P(
        "Your Uber code: 4432. Never share this code. Reply STOP ALL to 89203 to unsubscribe.",
        None,
        "4432",
        id="uber-short-code",
    ),
    P(
        "SIGNAL: Your code is: 123456 Do not share this code\n\ndoDiFGKPO1r",
        None,
        "123456",
        id="signal",
    ),
    P("123456 is your Amazon OTP. Do not share it with anyone.", None, "123456", id="amazon"),
    # --- Indonesian marketplaces and wallets ----------------------------------------------
    P(
        "JANGAN BERIKAN KODE INI KE SIAPAPUN TERMASUK PIHAK SHOPEE. Kode verifikasi Anda: "
        "482913. Berlaku 5 menit.",
        None,
        "482913",
        id="shopee",
    ),
    P(
        "JANGAN MEMBERITAHUKAN KODE INI KE SIAPAPUN termasuk pihak Tokopedia. WASPADA "
        "PENIPUAN! Kode verifikasi untuk masuk akun: 739201",
        None,
        "739201",
        id="tokopedia",
    ),
    P(
        "<#> Kode verifikasi GOJEK: 8421. JANGAN BERIKAN KODE INI KE SIAPAPUN. FA+9qCX9VSu",
        None,
        "8421",
        id="gojek",
    ),
    P(
        "<#> Kode verifikasi Grab Anda adalah 5927. Kode berlaku 10 menit. Hzc7yL2pQ1s",
        None,
        "5927",
        id="grab-id",
    ),
    P("Your Grab code is 3341. It expires in 5 minutes.", None, "3341", id="grab-en"),
    P(
        "[DANA] Kode OTP Anda 1234. Jangan berikan ke siapa pun termasuk pihak DANA. "
        "Hubungi 1500445 jika ada pertanyaan.",
        None,
        "1234",
        id="dana",
    ),
    P(
        "Kode OTP OVO kamu: 7345. Jangan berikan kode ini ke siapapun termasuk pihak OVO.",
        None,
        "7345",
        id="ovo",
    ),
    # --- Banks: amounts, card tails, hotlines, dates --------------------------------------
    P(
        "BCA: Transaksi Rp 1.250.000 di TOKOPEDIA dgn kartu ***4321. Kode OTP: 908172. "
        "JANGAN BERIKAN kode ini kpd siapapun.",
        None,
        "908172",
        id="bca-amount-card",
    ),
    P(
        "Livin by Mandiri: kode OTP Anda 556677 untuk transaksi Rp250.000 ke rekening "
        "1234567890. Berlaku 3 menit. Jangan berikan ke siapapun. Info 14000",
        None,
        "556677",
        id="mandiri",
    ),
    P(
        "Gunakan OTP 24680 untuk transaksi USD 1500 dengan kartu ending 9876. Jangan "
        "berikan OTP ke siapapun.",
        None,
        "24680",
        id="bni-usd-card-ending",
    ),
    P(
        "BRImo: Kode OTP 123987 berlaku hingga 27/11/2026 12:30 WIB. Hubungi 14017 untuk bantuan.",
        None,
        "123987",
        id="bri-date-hotline",
    ),
    P(
        "Transaksi kartu kredit BNI ***5566 sebesar IDR 3.450.000 di AMAZON. OTP: 778812. "
        "Abaikan jika bukan Anda.",
        None,
        "778812",
        id="bank-idr-card",
    ),
    P(
        "Kode OTP untuk pembayaran Rp 50000 adalah 246813",
        None,
        "246813",
        id="amount-without-separator",
    ),
    P(
        "Kode OTP Anda 4455. Hubungi CS 1500888 jika bukan Anda.",
        None,
        "4455",
        id="cs-hotline",
    ),
    P("Kode OTP 7788 dikirim 2026-11-27 pukul 12:30.", None, "7788", id="iso-date"),
    P(
        "Order 88776655 berhasil dibuat. Kode OTP: 1357",
        None,
        "1357",
        id="order-id-rejected",
    ),
    P(
        "Antrian 4455. Kode OTP untuk login: 9911",
        None,
        "9911",
        id="other-sentence-loses",
    ),
    P(
        "Nomor antrian 4455. Kode OTP Anda: 9911.",
        None,
        "9911",
        id="keyword-picks-among-two",
    ),
    # --- WebOTP and SMS Retriever ---------------------------------------------------------
    P("Your code is 123456.\n\n@zerotp.com #123456", None, "123456", id="webotp"),
    P(
        "Use this to sign in to ZeroTP.\n\n@app.zerotp.com #A1B2C3",
        None,
        "A1B2C3",
        id="webotp-alphanumeric",
    ),
    P(
        "<#> 4821 adalah kode OTP Anda. Ab/1234/xyz",
        None,
        "4821",
        id="app-hash-with-digits-ignored",
    ),
    # --- Other languages and scripts ------------------------------------------------------
    P("Код подтверждения: 4821. Никому не сообщайте.", None, "4821", id="russian"),
    P(
        "Ваш код для входа: 739104. Код действует 5 минут.",
        None,
        "739104",
        id="russian-login",
    ),
    P(
        "Tu código de verificación es 583920. No lo compartas con nadie.",
        None,
        "583920",
        id="spanish",
    ),
    P(
        "Seu código de verificação é 918273. Não compartilhe.",
        None,
        "918273",
        id="portuguese",
    ),
    P(
        "Doğrulama kodunuz: 564738. Bu kodu kimseyle paylaşmayın.",
        None,
        "564738",
        id="turkish",
    ),
    P(
        "Mã xác thực của bạn là 847362. Mã có hiệu lực trong 5 phút.",
        None,
        "847362",
        id="vietnamese",
    ),
    P("รหัส OTP ของคุณคือ 392817 (Ref: KXPD) ภายใน 5 นาที", None, "392817", id="thai"),
    P("【淘宝】验证码 583920，5分钟内有效", None, "583920", id="chinese-simplified"),
    P("您的驗證碼為 204918，請勿洩露。", None, "204918", id="chinese-traditional"),
    P("رمز التحقق: ١٢٣٤٥٦", None, "123456", id="arabic-indic-digits"),
    P("كود التفعيل الخاص بك هو 7788", None, "7788", id="arabic-latin-digits"),
    P("کد تأیید شما: ۴۵۶۷۸۹", None, "456789", id="persian-digits"),
    P(
        "आपका OTP 654321 है। इसे किसी के साथ साझा न करें।",
        None,
        "654321",
        id="hindi",
    ),
    P("आपका सत्यापन कोड ४८२९१३ है", None, "482913", id="devanagari-digits"),
    P("認証コード：１２３４５６", None, "123456", id="full-width-japanese"),
    P("Kode OTP Anda：９８７６５４", None, "987654", id="full-width-digits"),
    P(
        "Kod pengesahan anda ialah 302112. Jangan kongsi kod ini.",
        None,
        "302112",
        id="malay",
    ),
    P("Votre code de vérification est 556644.", None, "556644", id="french"),
    P("Ihr Bestätigungscode lautet 135790.", None, "135790", id="german"),
    # --- Shapes of the code itself --------------------------------------------------------
    P("Your code is 123-456", None, "123456", id="seed-example"),
    P("Your code is 012345", None, "012345", id="leading-zero"),
    P("Your verification code is 0042", None, "0042", id="four-digits-leading-zeros"),
    P("Kode verifikasi: 482 913", None, "482913", id="split-with-space"),
    P("Your passcode: 1234 5678", None, "12345678", id="split-four-four"),
    P("Your one-time password is 12345678", None, "12345678", id="eight-digits"),
    P("Your verification code: AB12CD", None, "AB12CD", id="alphanumeric-en"),
    P("Kode OTP: X7K9P2", None, "X7K9P2", id="alphanumeric-id"),
    P("Your Steam Guard code: 4K7PQ", None, "4K7PQ", id="alphanumeric-five"),
    P("Kode OTP: 123 4567", None, "1234567", id="split-three-four"),
    P("482913 adalah kode OTP Anda. Berlaku 5 menit.", None, "482913", id="code-first"),
    P("Kode\u00a0OTP:\u2009123\u00a0456", None, "123456", id="unicode-spaces"),
    P("Kode OTP: 12\u200b3456", None, "123456", id="zero-width-space"),
    P("Gunakan 4821 untuk masuk.", "Gojek", "4821", id="lone-number-with-sender"),
    # --- Risky shapes: pairs, 9+ digits, lower case, 3 digits ------------------------------
    P("Kode OTP Anda 48 20 19. Berlaku 3 menit.", None, "482019", id="pairs"),
    P("Your verification code is 31-74-90.", None, "317490", id="pairs-dashed-not-a-date"),
    P("Your security code is 12 84 59 30.", None, "12845930", id="pairs-four"),
    P("[OKX] Your verification code is 5102938476.", None, "5102938476", id="ten-digits"),
    P("Bybit: 9381027465 is your verification code.", None, "9381027465", id="ten-digits-first"),
    P("Kode verifikasi penarikan Anda 582019374.", None, "582019374", id="purpose-word-free"),
    P("Kode verifikasi 9 digit kamu: 204918375.", None, "204918375", id="announced-length-free"),
    P(
        "BNI: Kode otentikasi transaksi Rp 7.500.000 adalah 9028173645.",
        None,
        "9028173645",
        id="approved-amount-free",
    ),
    P("Альфа-Банк: код для входа 749201835.", None, "749201835", id="for-purpose-free"),
    P("Roblox: Your verification code is x9f3k2.", None, "x9f3k2", id="lower-case-kept"),
    P("Kode verifikasi Grab kamu: h3k8p1", "Grab", "h3k8p1", id="sender-name-free"),
    P("Kode Steam Guard kamu: 7KQ2M", "Steam", "7KQ2M", id="sender-product-free"),
    P("Your code is 482", None, "482", id="three-digits"),
    P("LinkAja: 037 adalah kode OTP kamu.", None, "037", id="three-digits-first"),
    # --- No code: promotions, balances, deliveries, transfers ------------------------------
    P(
        "PROMO GAJIAN! Diskon hingga Rp 50.000 untuk pembelian pulsa min. Rp 100.000. "
        "Berlaku s/d 30/11/2026.",
        "Telkomsel",
        None,
        id="promo-amounts",
    ),
    P("Saldo Anda Rp 150.000", "BCA", None, id="balance"),
    P("Paket Anda sedang dikirim, no resi JX1234567890", "JNE", None, id="delivery-resi"),
    P("Transfer Rp 50.000 ke 08123456789 berhasil", "BRI", None, id="transfer"),
    P(
        "Selamat! Anda mendapatkan cashback 10,000 poin. Cek aplikasi sekarang.",
        None,
        None,
        id="points",
    ),
    P(
        "Pulsa Rp25000 telah masuk ke nomor 081234567890. Terima kasih.",
        "Telkomsel",
        None,
        id="top-up",
    ),
    P("Pesanan #20261127 sedang dikemas oleh penjual.", "Shopee", None, id="order-number"),
    P(
        "Your order 12345678 has shipped and will arrive on 27/11/2026.",
        "Amazon",
        None,
        id="order-shipped",
    ),
    P(
        "Gunakan kode promo HEMAT50 untuk diskon Rp 20.000!",
        None,
        None,
        id="promo-code",
    ),
    P(
        "Tagihan kartu kredit ***1234 sebesar Rp 2.500.000 jatuh tempo 25/11/2026.",
        "BNI",
        None,
        id="card-bill",
    ),
    P("Pembayaran USD 1500 dengan kartu ending 9876 berhasil.", "BNI", None, id="card-ending"),
    P("Hubungi CS kami di 1500445 untuk bantuan 24 jam.", "BCA", None, id="hotline"),
    P("Your balance is $2500.00 as of 12:30 today.", "Chase", None, id="dollar-balance"),
    P("Kuota 5000 MB berhasil ditambahkan. Berlaku 30 hari.", "Telkomsel", None, id="quota"),
    P("Token listrik PLN: 1234-5678-9012-3456-7890", "PLN", None, id="electricity-token"),
    P("Gunakan 4821 untuk masuk.", None, None, id="lone-number-without-sender"),
    P(
        "Kunjungi https://promo.zerotp.com/deal/123456 sekarang!",
        "ZeroTP",
        None,
        id="url-digits",
    ),
    P(
        "Paket internet 24 jam hanya Rp 9999! Balas YA ke 2020.",
        "Telkomsel",
        None,
        id="subscription-short-code",
    ),
    P(
        "Pesanan Anda dengan ID transaksi TRX-998877 telah selesai.",
        "Tokopedia",
        None,
        id="transaction-id",
    ),
    P("Kode pos 12345 tidak valid.", None, None, id="postal-code"),
    P(
        "Kode OTP Anda sudah dikirim ke perangkat XK12AB",
        None,
        None,
        id="alphanumeric-not-adjacent",
    ),
    P("Use code SAVE2026 for 20% off your next order!", "Zalora", None, id="voucher-code"),
    P(
        "Your package will be delivered between 09:00 and 12:00 on 2026-11-28.",
        "DHL",
        None,
        id="delivery-window",
    ),
    P(
        "Saldo OVO Anda Rp 1.250.000. Top up sekarang dan dapatkan 500 poin.",
        "OVO",
        None,
        id="wallet-balance",
    ),
    P(
        "Selamat ulang tahun! Nikmati promo spesial 12.12 dengan diskon 50%.",
        "Lazada",
        None,
        id="birthday-promo",
    ),
    P("Paket harian aktif selama 1440 menit.", "XL", None, id="duration"),
    P(
        "Jangan berikan kode OTP kepada siapapun, termasuk pihak bank.",
        "BCA",
        None,
        id="warning-only",
    ),
    P(
        "<#> Kode verifikasi Anda akan dikirim sebentar lagi. Ab/1234/xyz",
        None,
        None,
        id="only-app-hash",
    ),
    P("", None, None, id="empty"),
    # --- No code: the traps nearest the risky shapes ---------------------------------------
    P("Hasil undian: 04 12 23 31 40 45. Cek tiket Anda.", "Lotto", None, id="lottery-pairs"),
    P(
        "Kode OTP Anda akan kedaluwarsa pada 27-11-26 pukul 14:30.",
        "OVO",
        None,
        id="date-like-pairs-not-beside",
    ),
    P("Votre code arrive. Appelez le 01 45 67 89 12.", "Acme", None, id="phone-in-pairs"),
    P("Kode OTP dikirim ke 6281234567890.", "Acme", None, id="phone-not-beside"),
    P("Top up 86 Diamonds untuk ID 482019374 berhasil.", "Moonton", None, id="player-id"),
    P("Kode pembayaran Anda 482019374 di Indomaret.", "Tokopedia", None, id="payment-code"),
    P("Kode verifikasi Grab kamu: h3k8p1", None, None, id="lower-case-not-beside"),
    P("Gunakan kode jajan25 buat potongan 25% di GoFood!", "Gojek", None, id="lower-promo"),
    P("Welcome! Your Wi-Fi password is hilton26.", "Hilton", None, id="wifi-password"),
    P("Your invite code is fam8k2q1.", "Spotify", None, id="invite-code"),
    P("TikTok: Kamu menerima 120 koin dari @budi2026.", "TikTok", None, id="user-name"),
    P("Transfer ke BCA (kode bank 014) berhasil.", "BCA", None, id="bank-code"),
    P("Kode OTP telah dikirim ke nomor yang berakhiran 725.", "GOPAY", None, id="phone-tail"),
    P("Kode verifikasi dikirim. Hubungi 135 jika belum.", "Acme", None, id="short-hotline"),
]

PATTERN_CASES = [
    P("Ref 998877. Your code is 123456", r"ref (\d+)", "998877", id="group-wins"),
    P("PIN-12-34 untuk login", r"\d{2}-\d{2}", "1234", id="whole-match"),
    P("Code: 12 34 56 valid", r"code: ([\d -]+\d)", "123456", id="separators-removed"),
    P("kode 5555 dan 7777", r"KODE (\d+)", "5555", id="case-insensitive"),
    P("رمز ١٢٣٤٥٦", r"(\d{6})", "123456", id="normalised-digits"),
    P("Kode OTP: 246810", r"token (\d+)", "246810", id="no-match-falls-back"),
    P("Kode OTP: 246810", r"(unclosed", "246810", id="invalid-falls-back"),
    P("Saldo Anda Rp 150.000", r"token (\d+)", None, id="no-match-no-code"),
    P("Kode OTP 48 20 19. Ref 777", r"ref (\d+)", "777", id="pattern-beats-pairs"),
]

# Garbage that would make a careless pattern backtrack or rescan (docs/OTP.md): each unit is
# repeated to GARBAGE_LENGTH characters, and the time must stay far below a quadratic one.
GARBAGE = [
    P("1", id="digits"),
    P("1 ", id="spaced-digits"),
    P("12-", id="dashed-pairs"),
    P("123 ", id="three-digit-groups"),
    P("1.", id="dotted-digits"),
    P("1/", id="slashes"),
    P("*", id="stars"),
    P("•", id="bullets"),
    P("x ", id="x-x-x"),
    P("a1", id="lower-alnum-run"),
    P("Rp 1.000 ", id="amounts"),
    P("kode 12 34 56 ", id="keywords-and-pairs"),
    P("OTP 1234567890 ", id="keywords-and-long-codes"),
    P("code a1b2c3 ", id="keywords-and-lower-codes"),
    P("Kode Grab Guard untuk masuk 9 digit Rp 1 ", id="gap-words"),
]
GARBAGE_LENGTH = 100_000
GARBAGE_SECONDS = 5.0  # about 1 s on one core; quadratic would take minutes


@pytest.mark.parametrize(("text", "sender", "expected"), CASES)
def test_extract_otp(text: str, sender: str | None, expected: str | None) -> None:
    assert extract_otp(text, sender) == expected


@pytest.mark.parametrize(("text", "pattern", "expected"), PATTERN_CASES)
def test_application_pattern(text: str, pattern: str, expected: str | None) -> None:
    assert extract_otp(text, pattern=pattern) == expected


@pytest.mark.parametrize("unit", GARBAGE)
def test_garbage_input_stays_fast(unit: str) -> None:
    text = (unit * (GARBAGE_LENGTH // len(unit) + 1))[:GARBAGE_LENGTH]
    started = time.perf_counter()
    extract_otp(text, "Grab")
    assert time.perf_counter() - started < GARBAGE_SECONDS
