"""A GSM modem emulated on a pseudo-terminal, for the simulator and the agent's tests.

`VirtualModem().start()` opens a pty pair; `modem.path` (e.g. ``/dev/pts/7``) opens with pyserial
like a real port, and a thread on the master side answers AT commands the way a Huawei, Quectel
or SIMCom modem does (3GPP TS 27.007 / 27.005 formats, PDU mode only):

    modem = VirtualModem(phone="6281234567890").start()
    modem.deliver("+6281311112222", "Your code is 123456")   # -> [1], and '+CMTI: "SM",1'
    ...
    modem.close()                                            # "unplug" the modem

Answers follow V.250: the echo of the received characters (while echo is on), then information
text as ``\\r\\n<line>\\r\\n<line>\\r\\n``, then the final result ``\\r\\nOK\\r\\n`` (or ``ERROR``,
``+CME ERROR: <n>``, ``+CMS ERROR: <n>``). Unsolicited result codes are ``\\r\\n<line>\\r\\n`` and
are never written in the middle of an answer.

POSIX only: the pty modules are imported by start(), so importing this module works anywhere.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import select
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType

from agent.pdu import encode_deliver, tpdu_length

__all__ = ["ICCID_COMMANDS", "SimFull", "VirtualModem"]

log = logging.getLogger(__name__)

ICCID_COMMANDS = ("+CCID", "+ICCID", "^ICCID", "+QCCID")

# 3GPP TS 27.007 +CME and TS 27.005 +CMS error codes used here.
CME_OPERATION_NOT_ALLOWED = 3
CME_SIM_NOT_INSERTED = 10
CME_NO_NETWORK_SERVICE = 30
CMS_OPERATION_NOT_ALLOWED = 302
CMS_SIM_NOT_INSERTED = 310
CMS_INVALID_MEMORY_INDEX = 321

_CME_TEXT = {
    CME_OPERATION_NOT_ALLOWED: "operation not allowed",
    CME_SIM_NOT_INSERTED: "SIM not inserted",
    CME_NO_NETWORK_SERVICE: "no network service",
}

# <stat> of a received message in PDU mode (27.005 3.1): 0 REC UNREAD, 1 REC READ.
_UNREAD, _READ = 0, 1

_USSD_DELAY = 0.05  # seconds between the OK to AT+CUSD and the +CUSD network answer
# A write that makes no progress for this long is dropped: nobody reads the port, and a UART
# without flow control would lose those bytes too (rather than block deliver() forever).
_WRITE_STALL = 2.0
_MAX_LINE = 2048  # longer command lines are discarded, as real modems overflow their buffer

_BASIC = re.compile(r"(&?[A-Z])(\d*)")
_EXTENDED = re.compile(r"([+^][A-Z][A-Z0-9]*)(=\?|\?|=|)(.*)", re.DOTALL)

_TEST_ANSWERS = {
    "+CMGF": "+CMGF: (0-1)",
    "+CMGL": "+CMGL: (0-4)",
    "+CPMS": '+CPMS: ("SM"),("SM"),("SM")',
    "+CSQ": "+CSQ: (0-31,99),(99)",
    "+CMEE": "+CMEE: (0-2)",
    "+CREG": "+CREG: (0-2)",
    "+CSCS": '+CSCS: ("GSM","IRA","UCS2")',
    "+CUSD": "+CUSD: (0-2)",
}


class SimFull(Exception):
    """The SIM has too few free slots for every part of a delivered message."""


class _Final(Exception):
    """Ends a command with this final result instead of OK."""

    def __init__(self, result: str) -> None:
        super().__init__(result)
        self.result = result


_ERROR = "ERROR"


@dataclass
class _Message:
    stat: int
    pdu: str


def _manufacturer(model: str) -> str:
    name = model.upper()
    if name.startswith("SIM"):
        return "SIMCOM_Ltd"
    if name.startswith(("EC", "EG", "UC", "BG", "M35", "M95", "M66", "M26")):
        return "Quectel"
    return "huawei"


def _fake_imei(seed: str) -> str:
    """A stable, Luhn-valid IMEI so that distinct virtual modems have distinct ones."""
    digits = "35" + str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))[:12]
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return digits + str((10 - total % 10) % 10)


def _normalize(body: str) -> str:
    """Uppercase and drop blanks outside double quotes (V.250 5.2.1); quoted text is kept."""
    out: list[str] = []
    quoted = False
    for char in body:
        if char == '"':
            quoted = not quoted
            out.append(char)
        elif quoted:
            out.append(char)
        elif not char.isspace():
            out.append(char.upper())
    return "".join(out)


def _split_commands(body: str) -> list[str] | None:
    """`E0+CMGF=0;+CSQ` -> ['E0', '+CMGF=0', '+CSQ']; None when a basic command is malformed."""
    commands: list[str] = []
    i = 0
    while i < len(body):
        if body[i] == ";":
            i += 1
        elif body[i] in "+^":
            j, quoted = i, False
            while j < len(body) and (quoted or body[j] != ";"):
                quoted ^= body[j] == '"'
                j += 1
            commands.append(body[i:j])
            i = j
        else:
            match = _BASIC.match(body, i)
            if match is None:
                return None
            commands.append(match.group())
            i = match.end()
    return commands


def _arguments(text: str) -> list[str]:
    """Comma-separated parameters; quotes are removed from quoted strings."""
    args: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            args.append("".join(current))
            current = []
        else:
            current.append(char)
    args.append("".join(current))
    return args


def _number(text: str) -> int:
    if not text.isdigit():
        raise _Final(_ERROR)
    return int(text)


class VirtualModem:
    """A GSM modem on a pty: open `path` with pyserial and talk AT commands to it."""

    def __init__(
        self,
        *,
        iccid: str | None = "8962100000000000001",
        imsi: str | None = "510100000000001",
        phone: str | None = None,
        operator: str = "TELKOMSEL",
        csq: int = 20,
        sim_ready: bool = True,
        registered: bool = True,
        roaming: bool = False,
        capacity: int = 30,
        indications: bool = True,
        iccid_command: str = "+CCID",
        ussd: dict[str, str] | None = None,
        model: str = "E173",
    ) -> None:
        if iccid_command not in ICCID_COMMANDS:
            raise ValueError(
                f"iccid_command must be one of {ICCID_COMMANDS}, not {iccid_command!r}"
            )
        self.iccid = iccid
        self.imsi = imsi
        self.phone = phone
        self.operator = operator
        self.csq = csq
        self.sim_ready = sim_ready
        self.registered = registered
        self.roaming = roaming
        self.capacity = capacity
        self.indications = indications
        self.iccid_command = iccid_command
        self.ussd = dict(ussd or {})
        self.model = model
        self.manufacturer = _manufacturer(model)
        self.revision = "11.126.85.00.209"
        self.imei = _fake_imei(iccid or imsi or model)

        self.path = ""
        self.commands: list[str] = []
        self._reset_profile()

        self._slots: dict[int, _Message] = {}
        self._lock = threading.Lock()  # guards _slots and commands
        # Held for every write to the master and while its fds are closed: an answer and an
        # unsolicited line never interleave, and no fd is used after close().
        self._io_lock = threading.Lock()
        self._closed = threading.Event()
        self._master: int | None = None
        self._slave: int | None = None
        self._wake_r: int | None = None
        self._wake_w: int | None = None
        self._thread: threading.Thread | None = None
        self._timers: list[threading.Timer] = []
        self._line = bytearray()
        self._after: list[Callable[[], None]] = []

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> VirtualModem:
        """Open the pty and start answering; returns self."""
        if self._thread is not None or self._closed.is_set():
            raise RuntimeError("a VirtualModem starts once")
        import tty

        master, slave = os.openpty()
        # Raw, or the slave's line discipline would turn '\r' into '\n' and echo on its own.
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._wake_r, self._wake_w = os.pipe()
        # The emulator keeps the slave open: when the agent closes the port, the pair lives on
        # (without any slave fd open, the master would read EIO).
        self._master, self._slave = master, slave
        self.path = os.ttyname(slave)
        self._thread = threading.Thread(
            target=self._run, name=f"virtual-modem {self.path}", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Unplug the modem: the agent's next read on the port reports EOF and writes fail."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
        if self._wake_w is not None:
            os.write(self._wake_w, b"x")
        for timer in self._timers:
            timer.cancel()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        with self._io_lock:
            for fd in (self._master, self._slave, self._wake_r, self._wake_w):
                if fd is not None:
                    os.close(fd)
            self._master = self._slave = self._wake_r = self._wake_w = None

    def __enter__(self) -> VirtualModem:
        return self if self._thread is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- the network side ---------------------------------------------------------------------

    def deliver(
        self,
        sender: str,
        text: str,
        timestamp: datetime | None = None,
        *,
        reference: int | None = None,
        split_surrogates: bool = False,
    ) -> list[int]:
        """The network delivers an SMS: store each part in the lowest free slot (1-based, as in
        Huawei and Quectel "SM" storage), announce each with +CMTI when indications are on and
        return the slot indexes. Raises SimFull, storing nothing, when not every part fits.
        Works whatever `sim_ready` and `registered` say: the caller plays the network."""
        if timestamp is None:
            timestamp = datetime.now(timezone.utc).astimezone()
        parts = encode_deliver(
            sender, text, timestamp, reference=reference, split_surrogates=split_surrogates
        )
        with self._lock:
            free = [i for i in range(1, self.capacity + 1) if i not in self._slots]
            if len(free) < len(parts):
                raise SimFull(
                    f"{len(parts)} part(s) to store, {len(free)} of {self.capacity} slots free"
                )
            indexes = free[: len(parts)]
            for index, pdu in zip(indexes, parts, strict=True):
                self._slots[index] = _Message(_UNREAD, pdu)
        if self.indications:
            for index in indexes:
                self.unsolicited(f'+CMTI: "SM",{index}')
        return indexes

    def stored(self) -> dict[int, str]:
        """Slot -> PDU hex of every message now on the SIM."""
        with self._lock:
            return {index: message.pdu for index, message in sorted(self._slots.items())}

    def unsolicited(self, line: str) -> None:
        """Write an unsolicited result code (e.g. Huawei's '^RSSI: 20') between answers."""
        self._write(f"\r\n{line}\r\n".encode())

    # -- the port -----------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        with self._io_lock:
            view = memoryview(data)
            while view and not self._closed.is_set() and self._master is not None:
                try:
                    view = view[os.write(self._master, view) :]
                    continue
                except BlockingIOError:
                    pass
                except OSError:
                    return
                _, writable, _ = select.select([self._wake_r], [self._master], [], _WRITE_STALL)
                if not writable:
                    return

    def _run(self) -> None:
        master, wake = self._master, self._wake_r
        assert master is not None and wake is not None
        while not self._closed.is_set():
            readable, _, _ = select.select([master, wake], [], [])
            if wake in readable:
                return
            try:
                chunk = os.read(master, 4096)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not chunk:
                return
            self._receive(chunk)

    def _receive(self, chunk: bytes) -> None:
        out = bytearray()
        for byte in chunk:
            if self.echo:
                out.append(byte)  # real modems echo every character received, as it arrives
            if byte == 0x0D:
                line = self._line.decode("latin-1")
                self._line.clear()
                out += self._execute(line)
                self._write(bytes(out))
                out.clear()
                after, self._after = self._after, []
                for action in after:
                    action()
            elif byte in (0x08, 0x7F):
                del self._line[-1:]
            elif byte >= 0x20:  # '\n' after '\r' and other control characters are ignored
                self._line.append(byte)
                if len(self._line) > _MAX_LINE:
                    self._line.clear()
        if out:
            self._write(bytes(out))

    # -- commands -----------------------------------------------------------------------------

    def _execute(self, line: str) -> bytes:
        line = line.strip()
        if not line:
            return b""
        with self._lock:
            self.commands.append(line)
        if line[:2].upper() != "AT":
            return b""  # like Hayes modems, ignore anything not starting with AT
        info: list[str] = []
        result = "OK"
        commands = _split_commands(_normalize(line[2:]))
        try:
            if commands is None:
                raise _Final(_ERROR)
            for command in commands:
                info += self._command(command)
        except _Final as final:
            result = final.result
        except Exception:
            log.exception("virtual modem: %r failed", line)
            result = _ERROR
        text = "".join(f"{item}\r\n" for item in info)
        return (("\r\n" + text) if info else "").encode() + f"\r\n{result}\r\n".encode()

    def _command(self, command: str) -> list[str]:
        if command[0] not in "+^":
            return self._basic(command)
        match = _EXTENDED.fullmatch(command)
        if match is None:
            raise _Final(_ERROR)
        name, op, rest = match.groups()
        if name in ICCID_COMMANDS:
            return self._iccid(name, op)
        handler = getattr(self, "_ext_" + name[1:].lower(), None)
        if name[0] != "+" or handler is None:
            raise _Final(_ERROR)
        if op == "=?":
            return [_TEST_ANSWERS[name]] if name in _TEST_ANSWERS else []
        return handler(op, _arguments(rest) if op == "=" else [])

    def _basic(self, command: str) -> list[str]:
        match = _BASIC.fullmatch(command)
        assert match is not None  # _split_commands only yields well-formed basic commands
        letter, digits = match.groups()
        value = int(digits) if digits else 0
        if letter == "E" and value in (0, 1):
            self.echo = value == 1
        elif letter in ("Z", "&F") and value == 0:
            # ATZ restores the profile, echo included: an agent must send ATE0 after ATZ.
            self._reset_profile()
        elif letter == "I" and value == 0:
            return [
                f"Manufacturer: {self.manufacturer}",
                f"Model: {self.model}",
                f"Revision: {self.revision}",
                f"IMEI: {self.imei}",
                "+GCAP: +CGSM,+DS,+ES",
            ]
        elif not ((letter == "V" and value == 1) or (letter in ("Q", "H") and value == 0)):
            raise _Final(_ERROR)
        return []

    def _reset_profile(self) -> None:
        self.echo = True
        self.cmee = 1  # numeric +CME ERROR codes (many modems default to 0: plain ERROR)
        self.cmgf = 0
        self.cscs = "GSM"
        self.cnmi = "2,1,0,0,0"
        self.creg_mode = 0
        self.cops_format = 0

    def _cme(self, code: int) -> _Final:
        if self.cmee == 0:
            return _Final(_ERROR)
        if self.cmee == 2 and code in _CME_TEXT:
            return _Final(f"+CME ERROR: {_CME_TEXT[code]}")
        return _Final(f"+CME ERROR: {code}")

    def _require_sim(self) -> None:
        if not self.sim_ready:
            raise self._cme(CME_SIM_NOT_INSERTED)

    def _require_sms(self, *, pdu_mode: bool = False) -> None:
        # +CMS ERROR is reported whatever +CMEE says (27.005 3.2.5).
        if not self.sim_ready:
            raise _Final(f"+CMS ERROR: {CMS_SIM_NOT_INSERTED}")
        if pdu_mode and self.cmgf != 0:
            # Only PDU mode is emulated: text mode listings are refused.
            raise _Final(f"+CMS ERROR: {CMS_OPERATION_NOT_ALLOWED}")

    def _iccid(self, name: str, op: str) -> list[str]:
        if name != self.iccid_command or op not in ("", "?", "=?") or self.iccid is None:
            raise _Final(_ERROR)
        self._require_sim()
        return [] if op == "=?" else [f"{name}: {self.iccid}"]

    def _stat(self) -> int:
        if not self.sim_ready:
            return 0  # not registered, not searching
        if not self.registered:
            return 2  # searching
        return 5 if self.roaming else 1

    # Extended commands: _ext_<name>(op, args), op being "" (action), "?" (read) or "=" (set).

    def _ext_cgmi(self, op: str, args: list[str]) -> list[str]:
        return [self.manufacturer]

    def _ext_cgmm(self, op: str, args: list[str]) -> list[str]:
        return [self.model]

    def _ext_cgmr(self, op: str, args: list[str]) -> list[str]:
        return [self.revision]

    def _ext_cgsn(self, op: str, args: list[str]) -> list[str]:
        return [self.imei]

    _ext_gmi, _ext_gmm, _ext_gmr, _ext_gsn = _ext_cgmi, _ext_cgmm, _ext_cgmr, _ext_cgsn

    def _ext_cmee(self, op: str, args: list[str]) -> list[str]:
        if op == "?":
            return [f"+CMEE: {self.cmee}"]
        value = _number(args[0]) if op == "=" else 0
        if value > 2:
            raise _Final(_ERROR)
        self.cmee = value
        return []

    def _ext_cscs(self, op: str, args: list[str]) -> list[str]:
        if op == "?":
            return [f'+CSCS: "{self.cscs}"']
        if op == "=":
            self.cscs = args[0]
        return []

    def _ext_cnmi(self, op: str, args: list[str]) -> list[str]:
        # Accepted and remembered; whether +CMTI is sent is the `indications` attribute.
        if op == "?":
            return [f"+CNMI: {self.cnmi}"]
        if op == "=":
            self.cnmi = ",".join(args)
        return []

    def _ext_cmgf(self, op: str, args: list[str]) -> list[str]:
        if op == "?":
            return [f"+CMGF: {self.cmgf}"]
        value = _number(args[0]) if op == "=" else 0
        if value > 1:
            raise _Final(_ERROR)
        self.cmgf = value
        return []

    def _ext_cpms(self, op: str, args: list[str]) -> list[str]:
        self._require_sms()
        if op == "":
            raise _Final(_ERROR)
        with self._lock:
            used = len(self._slots)
        if op == "?":
            return ["+CPMS: " + ",".join([f'"SM",{used},{self.capacity}'] * 3)]
        if len(args) > 3 or any(memory.upper() != "SM" for memory in args):
            raise _Final(f"+CMS ERROR: {CMS_OPERATION_NOT_ALLOWED}")  # only SIM storage here
        return ["+CPMS: " + ",".join([f"{used},{self.capacity}"] * 3)]

    def _ext_cimi(self, op: str, args: list[str]) -> list[str]:
        self._require_sim()
        if self.imsi is None:
            raise self._cme(CME_SIM_NOT_INSERTED)
        return [self.imsi]

    def _ext_cnum(self, op: str, args: list[str]) -> list[str]:
        self._require_sim()
        if not self.phone:
            return []
        return [f'+CNUM: "","+{self.phone.lstrip("+")}",145']

    def _ext_cops(self, op: str, args: list[str]) -> list[str]:
        if op == "=":
            # Only "+COPS=<mode>,<format>" to choose how the operator is reported.
            if len(args) > 2 or args[0] not in ("0", "3"):
                raise _Final(_ERROR)
            if len(args) == 2:
                value = _number(args[1])
                if value > 2:
                    raise _Final(_ERROR)
                self.cops_format = value
            return []
        if op == "":
            raise _Final(_ERROR)
        if self._stat() not in (1, 5):
            return ["+COPS: 0"]
        name = self.operator
        if self.cops_format == 2:
            name = (self.imsi or "51010")[:5]
        return [f'+COPS: 0,{self.cops_format},"{name}",2']

    def _ext_csq(self, op: str, args: list[str]) -> list[str]:
        if op != "":
            raise _Final(_ERROR)
        return [f"+CSQ: {self.csq},99"]

    def _ext_cpin(self, op: str, args: list[str]) -> list[str]:
        self._require_sim()
        if op == "=":
            raise self._cme(CME_OPERATION_NOT_ALLOWED)  # no PIN is asked for
        if op != "?":
            raise _Final(_ERROR)
        return ["+CPIN: READY"]

    def _ext_creg(self, op: str, args: list[str]) -> list[str]:
        if op == "=":
            value = _number(args[0])
            if value > 2:
                raise _Final(_ERROR)
            self.creg_mode = value  # no +CREG unsolicited codes are sent, though
            return []
        if op != "?":
            raise _Final(_ERROR)
        stat = self._stat()
        if self.creg_mode == 2 and stat in (1, 5):
            return [f'+CREG: 2,{stat},"1A2B","00C3D4"']
        return [f"+CREG: {self.creg_mode},{stat}"]

    def _ext_cmgl(self, op: str, args: list[str]) -> list[str]:
        self._require_sms(pdu_mode=True)
        if op == "?":
            raise _Final(_ERROR)
        wanted = _number(args[0]) if op == "=" else _UNREAD
        if wanted > 4:
            raise _Final(_ERROR)
        lines: list[str] = []
        with self._lock:
            for index, message in sorted(self._slots.items()):
                if wanted != 4 and message.stat != wanted:
                    continue
                lines.append(f"+CMGL: {index},{message.stat},,{tpdu_length(message.pdu)}")
                lines.append(message.pdu)
                message.stat = _READ
        return lines

    def _ext_cmgr(self, op: str, args: list[str]) -> list[str]:
        self._require_sms(pdu_mode=True)
        if op != "=":
            raise _Final(_ERROR)
        index = _number(args[0])
        with self._lock:
            message = self._slots.get(index)
            if message is None:
                raise _Final(f"+CMS ERROR: {CMS_INVALID_MEMORY_INDEX}")
            answer = [f"+CMGR: {message.stat},,{tpdu_length(message.pdu)}", message.pdu]
            message.stat = _READ
        return answer

    def _ext_cmgd(self, op: str, args: list[str]) -> list[str]:
        self._require_sms()
        if op != "=" or len(args) > 2:
            raise _Final(_ERROR)
        index = _number(args[0])
        flag = _number(args[1]) if len(args) == 2 else 0
        if flag > 4:
            raise _Final(_ERROR)
        if flag == 0 and not 1 <= index <= self.capacity:
            raise _Final(f"+CMS ERROR: {CMS_INVALID_MEMORY_INDEX}")
        with self._lock:
            if flag == 0:
                self._slots.pop(index, None)
            elif flag in (1, 2, 3):
                # Flags 2 and 3 also delete sent/unsent messages; only received ones exist here.
                self._slots = {i: m for i, m in self._slots.items() if m.stat != _READ}
            else:
                self._slots.clear()
        return []

    def _ext_cusd(self, op: str, args: list[str]) -> list[str]:
        if op == "?":
            return ["+CUSD: 1"]
        if op != "=":
            raise _Final(_ERROR)
        mode = _number(args[0])
        if mode > 2:
            raise _Final(_ERROR)
        if mode == 2 or len(args) < 2:
            return []  # cancel the session, or only switch result presentation
        self._require_sim()
        if self._stat() not in (1, 5):
            raise self._cme(CME_NO_NETWORK_SERVICE)
        answer = self.ussd.get(args[1])
        line = "+CUSD: 4" if answer is None else f'+CUSD: 0,"{answer}",15'
        self._after.append(lambda: self._later(_USSD_DELAY, line))
        return []

    def _later(self, delay: float, line: str) -> None:
        """Send an unsolicited line after `delay`, after the answer in progress was written."""
        timer = threading.Timer(delay, self.unsolicited, args=(line,))
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()
