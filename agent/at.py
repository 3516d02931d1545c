"""AT commands over a serial port (3GPP TS 27.007 / 27.005), one command at a time.

Unsolicited result codes (`+CMTI: "SM",3`, `+CUSD: ...`) may arrive at any moment, even
between a command and its answer: they are set aside in `urcs` for the modem's loop.
"""

from __future__ import annotations

import re
import time
from collections import deque

import serial

FINAL_OK = ("OK",)
FINAL_ERROR = ("ERROR", "+CME ERROR", "+CMS ERROR", "NO CARRIER", "COMMAND NOT SUPPORT")
# Lines a modem sends on its own. Prefixes that are also a command's answer (+CREG, +CPIN)
# are taken as the answer while that command runs.
URC_PREFIXES = (
    "+CMTI:",
    "+CDSI:",
    "+CUSD:",
    "+CMT:",
    "+CDS:",
    "+CBM:",
    "+CREG:",
    "+CGREG:",
    "+CPIN:",
    "+CIEV:",
    "+QIND:",
    "+QUSIM:",
    "^",  # Huawei: ^RSSI, ^HCSQ, ^MODE, ^BOOT, ^SRVST, ^SIMST ...
    "RING",
    "RDY",
    "Call Ready",
    "SMS Ready",
    "PB DONE",
)
# A Huawei/ZTE answer begins with ^ too (^ICCID:); these are answers while their command runs.
_COMMAND_NAME = re.compile(r"^AT([+^][A-Z]+)", re.IGNORECASE)


class AtError(Exception):
    """The modem answered ERROR, +CME ERROR: n or +CMS ERROR: n."""

    def __init__(self, command: str, final: str) -> None:
        super().__init__(f"{command}: {final}")
        self.command = command
        self.final = final


class AtTimeout(Exception):
    """No final result in time (a busy or hung modem)."""


class PortGone(Exception):
    """The port cannot be read or written any more (unplugged)."""


class AtChannel:
    def __init__(self, path: str, *, baudrate: int = 115200) -> None:
        self.path = path
        try:
            self._port = serial.serial_for_url(path, baudrate=baudrate, timeout=0.2)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise PortGone(f"{path}: {exc}") from None
        self._buffer = b""
        self.urcs: deque[str] = deque()

    def close(self) -> None:
        try:
            self._port.close()
        except (serial.SerialException, OSError):
            pass

    def _readline(self, deadline: float) -> str | None:
        """One non-empty line, or None at the deadline."""
        while True:
            if b"\n" in self._buffer or b"\r" in self._buffer:
                line, _, self._buffer = _split_line(self._buffer)
                text = line.decode("ascii", "replace").strip()
                if text:
                    return text
                continue
            if time.monotonic() >= deadline:
                return None
            try:
                chunk = self._port.read(max(1, self._port.in_waiting))
            except (serial.SerialException, OSError, TypeError) as exc:
                raise PortGone(f"{self.path}: {exc}") from None
            if chunk:
                self._buffer += chunk
            elif not self._port.is_open:
                raise PortGone(f"{self.path}: closed")

    def _write(self, data: bytes) -> None:
        try:
            self._port.write(data)
            self._port.flush()
        except (serial.SerialException, OSError) as exc:
            raise PortGone(f"{self.path}: {exc}") from None

    def command(self, command: str, *, timeout: float = 5.0) -> list[str]:
        """Send `command`; return its information lines (echo and URCs removed)."""
        self._write(command.encode("ascii") + b"\r")
        name_match = _COMMAND_NAME.match(command)
        name = name_match.group(1).upper() + ":" if name_match else ""
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            line = self._readline(deadline)
            if line is None:
                raise AtTimeout(f"{self.path}: no answer to {command} in {timeout:.0f} s")
            if line == command or line.upper() == command.upper():
                continue  # echo
            if line in FINAL_OK:
                return lines
            if line.startswith(FINAL_ERROR):
                raise AtError(command, line)
            if name and line.upper().startswith(name) and not name.startswith("+CUSD"):
                lines.append(line)
            elif line.startswith(URC_PREFIXES):
                self.urcs.append(line)
            else:
                lines.append(line)

    def wait_urc(self, timeout: float) -> str | None:
        """The next unsolicited line, reading the port for up to `timeout` seconds."""
        if self.urcs:
            return self.urcs.popleft()
        return self._readline(time.monotonic() + timeout)

    def probe(self, timeout: float = 2.0) -> bool:
        """Does something on this port answer AT within `timeout`?"""
        try:
            self.command("AT", timeout=timeout)
        except (AtError, AtTimeout):
            return False
        return True


def _split_line(buffer: bytes) -> tuple[bytes, bytes, bytes]:
    cut = min(i for i in (buffer.find(b"\r"), buffer.find(b"\n")) if i >= 0)
    return buffer[:cut], buffer[cut : cut + 1], buffer[cut + 1 :]
