"""One GSM modem: who it is (SIM identity, number, operator), how it is (signal, SIM,
network) and its SIM's messages, read through AT commands in PDU mode."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from agent.at import AtChannel, AtError, AtTimeout

MAPPINGS = ("normal", "promo", "special")

# Modem families answer one of these; the rest give ERROR.
ICCID_COMMANDS = ("AT+CCID", "AT+ICCID", "AT^ICCID?", "AT+QCCID")
_ICCID = re.compile(r"(?:\+CCID|\+ICCID|\^ICCID|\+QCCID|ICCID)?:?\s*\"?([0-9A-Fa-f]{18,22})")
_CNUM = re.compile(r'\+CNUM:\s*"[^"]*"\s*,\s*"([+0-9]+)"')
_COPS = re.compile(r'\+COPS:\s*\d+\s*,\s*\d+\s*,\s*"([^"]*)"')
_CSQ = re.compile(r"\+CSQ:\s*(\d+)")
_CREG = re.compile(r"\+CREG:\s*(?:\d+\s*,\s*)?(\d+)")
_CMGL = re.compile(r"\+CMGL:\s*(\d+)\s*,")
_CUSD = re.compile(r'\+CUSD:\s*(\d+)\s*(?:,\s*"((?:[^"]|"")*)")?')


@dataclass(frozen=True)
class PortSpec:
    """`PATH` or `PATH,phone=DIGITS,mapping=normal|promo|special` (`--port`)."""

    path: str
    phone: str | None = None
    mapping: str | None = None

    @classmethod
    def parse(cls, spec: str) -> PortSpec:
        path, *options = [item.strip() for item in spec.split(",")]
        if not path:
            raise ValueError(f"--port {spec!r}: the port is missing (COM3, /dev/ttyUSB0, ...)")
        values: dict[str, str] = {}
        for option in options:
            key, sep, value = option.partition("=")
            if not sep or key not in ("phone", "mapping"):
                raise ValueError(f"--port {spec!r}: {option!r} is not phone=... or mapping=...")
            values[key] = value
        phone = values.get("phone")
        if phone is not None:
            phone = digits(phone)
            if not phone:
                raise ValueError(f"--port {spec!r}: phone= needs digits, country code first")
        mapping = values.get("mapping")
        if mapping is not None and mapping not in MAPPINGS:
            raise ValueError(f"--port {spec!r}: mapping must be one of {', '.join(MAPPINGS)}")
        return cls(path=path, phone=phone, mapping=mapping)


def digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def signal_percent(rssi: int) -> int:
    """AT+CSQ's 0..31 as 0..100 %; 99 (unknown) as 0."""
    if rssi == 99 or rssi < 0:
        return 0
    return round(min(rssi, 31) * 100 / 31)


@dataclass
class Identity:
    uid: str
    iccid: str | None
    imsi: str | None


@dataclass
class Health:
    provider: str
    signal: int
    sim_ready: bool
    registered: bool

    @property
    def can_order(self) -> bool:
        return self.sim_ready and self.registered


class Modem:
    def __init__(self, channel: AtChannel, spec: PortSpec) -> None:
        self.channel = channel
        self.spec = spec

    def setup(self) -> None:
        """Echo off, numeric errors, PDU mode, messages kept on the SIM with an indication."""
        self._try("ATE0")
        self._try("AT+CMEE=1")
        self.channel.command("AT+CMGF=0")
        self._try('AT+CPMS="SM","SM","SM"')
        self._try("AT+CNMI=2,1,0,0,0")
        self._try("AT+COPS=3,0")  # operator names in long alphanumeric form

    def _try(self, command: str, timeout: float = 5.0) -> list[str] | None:
        try:
            return self.channel.command(command, timeout=timeout)
        except AtError:
            return None

    def identity(self) -> Identity:
        iccid = None
        for command in ICCID_COMMANDS:
            for line in self._try(command) or ():
                match = _ICCID.search(line)
                if match:
                    iccid = match.group(1).upper().rstrip("F")
                    break
            if iccid:
                break
        imsi = None
        for line in self._try("AT+CIMI") or ():
            if line.isdigit() and 6 <= len(line) <= 15:
                imsi = line
        if iccid:
            uid = iccid
        elif imsi:
            uid = f"imsi-{imsi}"
        else:
            uid = port_name(self.channel.path)
        return Identity(uid=uid, iccid=iccid, imsi=imsi)

    def own_number(self) -> str | None:
        for line in self._try("AT+CNUM") or ():
            match = _CNUM.search(line)
            if match and digits(match.group(1)):
                return digits(match.group(1))
        return None

    def ussd_number(self, code: str, timeout: float = 20.0) -> str | None:
        """Ask the operator for the number (`*808#` and the like); digits of the answer."""
        if self._try(f'AT+CUSD=1,"{code}",15', timeout=timeout) is None:
            return None
        others: list[str] = []  # other URCs (+CMTI) stay for the SMS loop
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                line = self.channel.wait_urc(max(0.0, deadline - time.monotonic()))
                if line is None:
                    return None
                match = _CUSD.match(line)
                if not match:
                    others.append(line)
                    continue
                found = re.findall(r"\+?\d[\d -]{7,16}\d", match.group(2) or "")
                return digits(found[0]) if found else None
            return None
        finally:
            self.channel.urcs.extend(others)

    def health(self) -> Health:
        sim_ready = any("READY" in line for line in self._try("AT+CPIN?") or ())
        registered = False
        for line in self._try("AT+CREG?") or ():
            match = _CREG.search(line)
            registered = bool(match) and match.group(1) in ("1", "5")
        provider = ""
        for line in self._try("AT+COPS?") or ():
            match = _COPS.search(line)
            if match:
                provider = match.group(1).strip()
        signal = 0
        for line in self._try("AT+CSQ") or ():
            match = _CSQ.search(line)
            if match:
                signal = signal_percent(int(match.group(1)))
        return Health(provider=provider, signal=signal, sim_ready=sim_ready, registered=registered)

    def messages(self) -> list[tuple[int, str]]:
        """Every message on the SIM as (index, PDU hex), read or not."""
        lines = self.channel.command("AT+CMGL=4", timeout=15.0)
        found: list[tuple[int, str]] = []
        index: int | None = None
        for line in lines:
            header = _CMGL.match(line)
            if header:
                index = int(header.group(1))
            elif index is not None:
                found.append((index, line.strip()))
                index = None
        return found

    def delete(self, index: int) -> None:
        self.channel.command(f"AT+CMGD={index}")


def port_name(path: str) -> str:
    """COM3 stays COM3; /dev/ttyUSB0 becomes ttyUSB0."""
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


__all__ = ["AtError", "AtTimeout", "Health", "Identity", "Modem", "PortSpec", "signal_percent"]
