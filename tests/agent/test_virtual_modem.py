"""The virtual modem, driven through pyserial on its pty exactly as the agent drives a real one."""

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import serial

pytestmark = pytest.mark.skipif(
    os.name != "posix", reason="the virtual modem needs a POSIX pseudo-terminal (os.openpty)"
)

if os.name == "posix":
    from agent.pdu import decode_deliver, join_parts, tpdu_length
    from agent.virtual_modem import SimFull, VirtualModem

FINAL = re.compile(rb"\r\n(OK|ERROR|\+CME ERROR: [^\r]*|\+CMS ERROR: [^\r]*)\r\n")
LONG_TEXT = "Kode verifikasi Anda adalah 482913. " * 6  # 216 GSM characters: two parts


class Port:
    """The agent's side: a pyserial port that sends command lines and reads answers."""

    def __init__(self, path: str) -> None:
        self.serial = serial.Serial(path, 115200, timeout=0.05)
        self.pending = b""

    def read_until(self, pattern: re.Pattern[bytes], timeout: float = 2.0) -> bytes:
        """Bytes up to and including the first match of `pattern`."""
        deadline = time.monotonic() + timeout
        while (match := pattern.search(self.pending)) is None:
            assert time.monotonic() < deadline, f"no {pattern.pattern!r} in {self.pending!r}"
            self.pending += self.serial.read(self.serial.in_waiting or 1)
        data, self.pending = self.pending[: match.end()], self.pending[match.end() :]
        return data

    def raw(self, command: bytes) -> bytes:
        """Everything the modem sends back for `command`, up to its final result."""
        self.serial.write(command)
        return self.read_until(FINAL)

    def answer(self, command: str) -> list[str]:
        """Information lines and final result of `command`, without its echo."""
        lines = re.split(r"[\r\n]+", self.raw(command.encode() + b"\r").decode())
        return [line for line in lines if line and line != command]

    def unsolicited(self, timeout: float = 2.0) -> str:
        return self.read_until(re.compile(rb"\r\n([^\r\n]+)\r\n"), timeout).decode().strip()

    def nothing_within(self, seconds: float) -> bool:
        time.sleep(seconds)
        self.pending += self.serial.read(self.serial.in_waiting or 1)
        return self.pending == b""


@pytest.fixture
def connect() -> Iterator[Callable[..., tuple["VirtualModem", Port]]]:
    """connect(**modem_options) -> (a started modem, an agent's port on it)."""
    opened: list[tuple[VirtualModem, Port]] = []

    def connect_(**options: object) -> tuple[VirtualModem, Port]:
        modem = VirtualModem(**options).start()  # type: ignore[arg-type]
        port = Port(modem.path)
        opened.append((modem, port))
        return modem, port

    yield connect_
    for modem, port in opened:
        modem.close()
        port.serial.close()


def test_echo_is_on_at_start_until_ate0_and_atz_turns_it_back_on(connect) -> None:
    modem, port = connect()
    assert port.raw(b"AT\r") == b"AT\r\r\nOK\r\n"
    assert port.raw(b"ATE0\r") == b"ATE0\r\r\nOK\r\n"
    assert port.raw(b"AT\r") == b"\r\nOK\r\n"
    assert port.raw(b"ATE1\r") == b"\r\nOK\r\n"
    assert port.raw(b"AT+CSQ\r") == b"AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
    port.raw(b"ATE0\r")
    assert port.raw(b"ATZ\r") == b"\r\nOK\r\n"
    assert port.raw(b"AT\r") == b"AT\r\r\nOK\r\n"
    assert modem.commands == ["AT", "ATE0", "AT", "ATE1", "AT+CSQ", "ATE0", "ATZ", "AT"]


def test_basic_and_setup_commands_answer_ok_and_unknown_ones_error(connect) -> None:
    _, port = connect(model="E173")
    port.raw(b"ATE0\r")
    ati = port.answer("ATI")
    assert "Model: E173" in ati
    assert ati[-1] == "OK"
    assert port.answer("AT+CGMI") == ["huawei", "OK"]
    assert port.answer("AT+CGMM") == ["E173", "OK"]
    for command in ("ATZ", "ATE0", "AT+CMEE=1", 'AT+CSCS="GSM"', "AT+CNMI=2,1,0,0,0"):
        assert port.answer(command) == ["OK"]
    assert port.answer("AT+CMGF=0") == ["OK"]
    assert port.answer("AT+CMGF?") == ["+CMGF: 0", "OK"]
    assert port.answer("AT+NOPE") == ["ERROR"]
    assert port.answer("AT^CURC=0") == ["ERROR"]
    assert port.answer("at+cmgf=0;+csq") == ["+CSQ: 20,99", "OK"]


@pytest.mark.parametrize("iccid_command", ["+CCID", "+ICCID", "^ICCID", "+QCCID"])
def test_only_the_configured_iccid_command_answers_in_its_own_style(
    connect, iccid_command: str
) -> None:
    _, port = connect(iccid="8962100000000000017F", iccid_command=iccid_command)
    port.raw(b"ATE0\r")
    for command in ("+CCID", "+ICCID", "^ICCID", "+QCCID"):
        expected = [f"{command}: 8962100000000000017F", "OK"]
        answer = port.answer(f"AT{command}")
        assert answer == (expected if command == iccid_command else ["ERROR"])
    if iccid_command == "^ICCID":
        assert port.answer("AT^ICCID?") == ["^ICCID: 8962100000000000017F", "OK"]
    assert port.answer("AT+CIMI") == ["510100000000001", "OK"]


def test_a_sim_without_iccid_or_imsi_answers_errors(connect) -> None:
    _, port = connect(iccid=None, imsi=None)
    port.raw(b"ATE0\r")
    assert port.answer("AT+CCID") == ["ERROR"]
    assert port.answer("AT+CIMI") == ["+CME ERROR: 10"]


@pytest.mark.parametrize(
    ("phone", "expected"),
    [("6281234567890", ['+CNUM: "","+6281234567890",145', "OK"]), (None, ["OK"])],
)
def test_cnum_gives_the_number_only_when_the_sim_knows_it(connect, phone, expected) -> None:
    _, port = connect(phone=phone)
    port.raw(b"ATE0\r")
    assert port.answer("AT+CNUM") == expected


def test_a_registered_modem_reports_signal_sim_and_operator(connect) -> None:
    modem, port = connect(csq=17)
    port.raw(b"ATE0\r")
    assert port.answer("AT+CPIN?") == ["+CPIN: READY", "OK"]
    assert port.answer("AT+CREG?") == ["+CREG: 0,1", "OK"]
    assert port.answer("AT+COPS=3,0") == ["OK"]
    assert port.answer("AT+COPS?") == ['+COPS: 0,0,"TELKOMSEL",2', "OK"]
    assert port.answer("AT+CSQ") == ["+CSQ: 17,99", "OK"]
    modem.csq = 99
    modem.roaming = True
    assert port.answer("AT+CSQ") == ["+CSQ: 99,99", "OK"]
    assert port.answer("AT+CREG?") == ["+CREG: 0,5", "OK"]


def test_a_searching_modem_has_no_operator(connect) -> None:
    modem, port = connect(registered=False)
    port.raw(b"ATE0\r")
    assert port.answer("AT+CREG?") == ["+CREG: 0,2", "OK"]
    assert port.answer("AT+COPS?") == ["+COPS: 0", "OK"]
    modem.registered = True
    assert port.answer("AT+CREG?") == ["+CREG: 0,1", "OK"]


def test_a_missing_sim_gives_cme_error_10_or_plain_error_with_cmee_0(connect) -> None:
    modem, port = connect(phone="6281234567890")
    port.raw(b"ATE0\r")
    modem.sim_ready = False
    for command in ("AT+CPIN?", "AT+CCID", "AT+CIMI", "AT+CNUM"):
        assert port.answer(command) == ["+CME ERROR: 10"], command
    assert port.answer("AT+CREG?") == ["+CREG: 0,0", "OK"]
    assert port.answer("AT+COPS?") == ["+COPS: 0", "OK"]
    assert port.answer("AT+CMGL=4") == ["+CMS ERROR: 310"]
    assert port.answer("AT+CMEE=0") == ["OK"]
    assert port.answer("AT+CPIN?") == ["ERROR"]
    assert port.answer("AT+CMEE=2") == ["OK"]
    assert port.answer("AT+CPIN?") == ["+CME ERROR: SIM not inserted"]


def test_a_two_part_message_is_announced_stored_and_listed_in_pdu_mode(connect) -> None:
    modem, port = connect()
    port.raw(b"ATE0\r")
    assert port.answer("AT+CMGF=0") == ["OK"]
    assert port.answer('AT+CPMS="SM","SM","SM"') == ["+CPMS: 0,30,0,30,0,30", "OK"]

    when = datetime(2025, 3, 1, 8, 30, tzinfo=UTC)
    assert modem.deliver("+6281311112222", LONG_TEXT, when, reference=7) == [1, 2]
    assert [port.unsolicited(), port.unsolicited()] == ['+CMTI: "SM",1', '+CMTI: "SM",2']

    stored = modem.stored()
    assert sorted(stored) == [1, 2]
    parts = [decode_deliver(stored[1]), decode_deliver(stored[2])]
    assert [(part.sender, part.reference, part.part) for part in parts] == [
        ("+6281311112222", 7, 1),
        ("+6281311112222", 7, 2),
    ]
    assert join_parts(parts) == LONG_TEXT
    assert parts[0].timestamp == when
    assert port.answer("AT+CPMS?") == ['+CPMS: "SM",2,30,"SM",2,30,"SM",2,30', "OK"]
    assert port.answer("AT+CMGL=4") == [
        f"+CMGL: 1,0,,{tpdu_length(stored[1])}",
        stored[1],
        f"+CMGL: 2,0,,{tpdu_length(stored[2])}",
        stored[2],
        "OK",
    ]
    # Listed once, the messages are read.
    assert port.answer("AT+CMGL=0") == ["OK"]
    assert port.answer("AT+CMGL=1")[0] == f"+CMGL: 1,1,,{tpdu_length(stored[1])}"
    assert port.answer("AT+CMGR=2") == [f"+CMGR: 1,,{tpdu_length(stored[2])}", stored[2], "OK"]
    assert port.answer("AT+CMGR=3") == ["+CMS ERROR: 321"]


def test_cmgd_empties_the_sim(connect) -> None:
    modem, port = connect(indications=False)
    port.raw(b"ATE0\r")
    for text in ("one", "two", "three", "four"):
        modem.deliver("+6281311112222", text)
    assert port.answer("AT+CMGD=1") == ["OK"]
    assert port.answer("AT+CMGD=2,0") == ["OK"]
    assert sorted(modem.stored()) == [3, 4]
    assert port.answer("AT+CMGD=1") == ["OK"]  # an empty slot, as most modems do
    assert port.answer("AT+CMGD=31") == ["+CMS ERROR: 321"]
    assert port.answer("AT+CMGD=1,4") == ["OK"]
    assert modem.stored() == {}
    assert modem.deliver("+6281311112222", "again") == [1]


def test_without_indications_no_cmti_is_sent_but_cmgl_lists_the_message(connect) -> None:
    modem, port = connect(indications=False)
    port.raw(b"ATE0\r")
    [index] = modem.deliver("+6281311112222", "Your code is 123456")
    assert port.nothing_within(0.2)
    assert port.answer("AT+CMGL=4") == [
        f"+CMGL: {index},0,,{tpdu_length(modem.stored()[index])}",
        modem.stored()[index],
        "OK",
    ]
    modem.indications = True
    modem.deliver("+6281311112222", "Another code: 654321")
    assert port.unsolicited() == '+CMTI: "SM",2'


def test_a_full_sim_raises_simfull_and_stores_nothing_more(connect) -> None:
    modem, _ = connect(capacity=2, indications=False)
    modem.deliver("+6281311112222", "first")
    with pytest.raises(SimFull):
        modem.deliver("+6281311112222", LONG_TEXT)  # two parts, one free slot
    assert sorted(modem.stored()) == [1]
    modem.deliver("+6281311112222", "second")
    with pytest.raises(SimFull):
        modem.deliver("+6281311112222", "third")
    assert sorted(modem.stored()) == [1, 2]


def test_text_mode_is_accepted_but_its_listings_are_refused(connect) -> None:
    _, port = connect()
    port.raw(b"ATE0\r")
    assert port.answer("AT+CMGF=1") == ["OK"]
    assert port.answer("AT+CMGF?") == ["+CMGF: 1", "OK"]
    assert port.answer('AT+CMGL="ALL"') == ["+CMS ERROR: 302"]
    assert port.answer("AT+CMGR=1") == ["+CMS ERROR: 302"]


def test_the_ussd_answer_arrives_as_an_unsolicited_line_after_ok(connect) -> None:
    _, port = connect(ussd={"*888#": "Nomor Anda 6281234567890"})
    port.raw(b"ATE0\r")
    assert port.answer('AT+CUSD=1,"*888#",15') == ["OK"]
    assert port.unsolicited() == '+CUSD: 0,"Nomor Anda 6281234567890",15'
    assert port.answer('AT+CUSD=1,"*999#",15') == ["OK"]
    assert port.unsolicited() == "+CUSD: 4"


def test_bytes_sent_one_at_a_time_make_a_command(connect) -> None:
    modem, port = connect()
    for byte in b"at+csq\r\n":
        port.serial.write(bytes([byte]))
        time.sleep(0.005)
    # Each character is echoed as it arrives; the '\n' after '\r' is ignored.
    assert port.read_until(FINAL) == b"at+csq\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
    port.read_until(re.compile(rb"\n"))  # the echoed '\n'
    port.serial.write(b"\n")
    assert port.raw(b"AT\r") == b"\nAT\r\r\nOK\r\n"
    assert modem.commands == ["at+csq", "AT"]


def test_unsolicited_codes_never_interleave_with_answers(connect) -> None:
    modem, port = connect(capacity=200)
    port.raw(b"ATE0\r")

    def network() -> None:
        for number in range(100):
            modem.deliver("+6281311112222", f"code {number}")

    sender = threading.Thread(target=network)
    sender.start()
    received = b""
    for _ in range(50):
        received += port.raw(b"AT+CSQ\r")
    sender.join()
    if b'"SM",100\r\n' not in received:
        received += port.read_until(re.compile(rb'\+CMTI: "SM",100\r\n'))

    assert re.fullmatch(rb'(\r\n(\+CMTI: "SM",\d+|\+CSQ: 20,99|OK)\r\n)+', received)
    assert received.count(b"\r\nOK\r\n") == 50
    indexes = re.findall(rb'\+CMTI: "SM",(\d+)', received)
    assert sorted(int(index) for index in indexes) == list(range(1, 101))


def test_close_makes_the_agents_port_fail_promptly_and_stops_the_thread(connect) -> None:
    modem, port = connect()
    port.serial.timeout = 5
    outcome: list[object] = []

    def agent_reads() -> None:
        try:
            outcome.append(port.serial.read(10))
        except serial.SerialException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=agent_reads)
    reader.start()
    time.sleep(0.1)
    started = time.monotonic()
    modem.close()
    reader.join(timeout=2)

    assert not reader.is_alive()
    assert time.monotonic() - started < 2
    assert outcome and (isinstance(outcome[0], serial.SerialException) or outcome[0] == b"")
    with pytest.raises(serial.SerialException):
        port.serial.write(b"AT\r")
    assert not any(thread.name == f"virtual-modem {modem.path}" for thread in threading.enumerate())
    modem.close()  # twice is harmless
