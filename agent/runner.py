"""`python -m agent run`: modems found and watched, synced, heartbeated; every SMS taken from
a SIM into the outbox and from there to the server.

Threads: one per modem (it owns its serial port), one for delivery, and the main loop that
scans for ports and talks sync and heartbeat to the server.
"""

from __future__ import annotations

import glob
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from agent.at import AtChannel, AtError, AtTimeout, PortGone
from agent.delivery import Deliverer
from agent.modem import Modem, PortSpec, port_name
from agent.outbox import Outbox, Part, received_time
from agent.pdu import PduError, decode_deliver
from agent.server import Server, ServerError

log = logging.getLogger("zerotp.agent")

PROBE_SECONDS = 2.0


@dataclass
class Settings:
    ports: Sequence[PortSpec] = ()
    scan_globs: Sequence[str] = ()
    heartbeat_seconds: float = 30.0
    scan_seconds: float = 10.0
    ussd: dict[str, str] = field(default_factory=dict)  # operator name (lower case) -> code


@dataclass
class ModemState:
    """What the agent knows of the modem on one port (the main loop reads it)."""

    port: str
    uid: str | None = None
    phone: str | None = None
    number_source: str | None = None
    provider: str = ""
    signal: int = 0
    can_order: bool = False
    mapping: str = "normal"

    def sync_item(self) -> dict[str, object]:
        return {
            "uid": self.uid,
            "phone_number": self.phone,
            "provider": self.provider,
            "signal": self.signal,
            "mapping": self.mapping,
        }

    def sync_key(self) -> tuple[object, ...]:
        """A change in any of these needs a sync; signal alone goes with the heartbeat."""
        return (self.uid, self.phone, self.provider, self.mapping)


class ModemWorker(threading.Thread):
    def __init__(self, spec: PortSpec, agent: Agent, *, quiet_probe: bool) -> None:
        super().__init__(name=f"modem {spec.path}", daemon=True)
        self.spec = spec
        self.agent = agent
        self.quiet_probe = quiet_probe  # a scanned port that is not a modem is no news
        self.state = ModemState(port=spec.path, mapping=spec.mapping or "normal")
        self.stopping = threading.Event()
        self.answered = False  # the port answered AT: it is a modem
        self.duplicate_of: str | None = None

    def run(self) -> None:
        channel: AtChannel | None = None
        try:
            channel = AtChannel(self.spec.path)
            if not channel.probe(PROBE_SECONDS):
                if not self.quiet_probe:
                    log.warning("%s does not answer AT; will try again", self.spec.path)
                return
            self.answered = True
            self._serve(Modem(channel, self.spec))
        except PortGone as exc:
            if self.answered:
                log.warning("modem on %s is gone (%s)", self.spec.path, exc)
        except (AtError, AtTimeout) as exc:
            log.warning("modem on %s stopped answering (%s); will try again", self.spec.path, exc)
        except Exception:
            log.exception("modem on %s failed", self.spec.path)
        finally:
            if channel is not None:
                channel.close()
            self.agent.modem_gone(self)

    def _serve(self, modem: Modem) -> None:
        modem.setup()
        identity = modem.identity()
        state = self.state
        state.uid = identity.uid
        owner = self.agent.claim(identity.uid, self)
        if owner is not None:
            # One USB modem shows several serial interfaces; the first one serves it.
            self.duplicate_of = owner
            log.info("%s is another interface of the modem on %s", self.spec.path, owner)
            return
        self._refresh(modem)
        state.phone, state.number_source = self._number(modem)
        if state.phone:
            log.info(
                "modem %s on %s: %s (%s), %s, signal %s%%",
                state.uid,
                state.port,
                state.phone,
                state.number_source,
                state.provider or "no operator",
                state.signal,
            )
        else:
            log.warning(
                "modem %s on %s: number unknown (give it with --port %s,phone=...)",
                state.uid,
                state.port,
                state.port,
            )
        self.agent.modem_changed(self)
        self._sweep(modem)
        next_sweep = time.monotonic() + self.agent.settings.scan_seconds
        next_health = time.monotonic() + self.agent.settings.heartbeat_seconds
        while not self.stopping.is_set() and not self.agent.stop.is_set():
            line = modem.channel.wait_urc(0.5)
            if line and line.startswith(("+CMTI:", "+CDSI:")):
                next_sweep = 0.0  # a new message: read it now
            now = time.monotonic()
            if now >= next_sweep:
                self._sweep(modem)
                next_sweep = now + self.agent.settings.scan_seconds
            if now >= next_health:
                before = state.sync_key()
                self._refresh(modem)
                if not state.phone:  # the SIM was not ready, or USSD did not answer: again
                    state.phone, state.number_source = self._number(modem)
                if state.sync_key() != before:
                    self.agent.modem_changed(self)
                next_health = now + self.agent.settings.heartbeat_seconds

    def _refresh(self, modem: Modem) -> None:
        health = modem.health()
        state = self.state
        state.provider, state.signal, state.can_order = (
            health.provider,
            health.signal,
            health.can_order,
        )
        self.agent.outbox.modem_seen(
            state.port,
            uid=state.uid,
            provider=state.provider,
            signal=state.signal,
            can_order=int(state.can_order),
            mapping=state.mapping,
            present=1,
            note=None
            if health.can_order
            else ("SIM not ready" if not health.sim_ready else "not registered on a network"),
        )

    def _number(self, modem: Modem) -> tuple[str | None, str | None]:
        if self.spec.phone:
            return self.spec.phone, "port spec"
        number = modem.own_number()
        if number:
            return number, "AT+CNUM"
        code = self.agent.settings.ussd.get(self.state.provider.lower())
        if code:
            number = modem.ussd_number(code)
            if number:
                return number, f"USSD {code}"
        return None, None

    def _sweep(self, modem: Modem) -> None:
        """Every message on the SIM: into the outbox (committed), then off the SIM."""
        state = self.state
        assert state.uid is not None
        taken = 0
        for index, pdu in modem.messages():
            try:
                sms = decode_deliver(pdu)
            except PduError as exc:
                log.error(
                    "modem %s: unreadable PDU in slot %s (%s); kept as dead letter",
                    state.uid,
                    index,
                    exc,
                )
                self.agent.outbox.dead_undecodable(
                    uid=state.uid, phone=state.phone or "", pdu=pdu, error=str(exc)
                )
            else:
                # The SMSC stamp has whole seconds: the end of that second, so that a code
                # sent in the order's own second is not taken for an older SMS.
                stamp_end = sms.timestamp + timedelta(microseconds=999_999)
                received_at, replaced = received_time(stamp_end, self.agent.server.now())
                if replaced:
                    log.warning(
                        "modem %s: SMSC time %s is off by more than 5 min; reporting %s",
                        state.uid,
                        sms.timestamp.isoformat(),
                        received_at,
                    )
                self.agent.outbox.add_part(
                    Part.of(
                        sms,
                        uid=state.uid,
                        phone=state.phone or "",
                        pdu=pdu,
                        received_at=received_at,
                    )
                )
                log.info(
                    "modem %s: SMS from %s taken from the SIM%s",
                    state.uid,
                    sms.sender,
                    f" (part {sms.part}/{sms.parts})" if sms.parts > 1 else "",
                )
            try:
                modem.delete(index)
            except AtError as exc:
                log.warning("modem %s: could not delete slot %s: %s", state.uid, index, exc)
            taken += 1
        if taken:
            self.agent.outbox.modem_seen(state.port, last_sms_at=time.time())
            self.agent.deliverer.wake.set()


class Agent:
    def __init__(
        self,
        *,
        server: Server,
        outbox: Outbox,
        settings: Settings,
        stop: threading.Event,
        list_ports: Callable[[], list[str]] | None = None,
    ) -> None:
        self.server = server
        self.outbox = outbox
        self.settings = settings
        self.stop = stop
        self.list_ports = list_ports or system_ports
        self.key_refused: ServerError | None = None
        self.deliverer = Deliverer(
            outbox, server, stop=stop, ready=self.ready, on_key_refused=self._refuse
        )
        self._lock = threading.Lock()
        self.workers: dict[str, ModemWorker] = {}
        self.owners: dict[str, str] = {}  # uid -> port serving it
        self.synced: dict[str, tuple[object, ...]] = {}  # uid -> sync key the server has
        self.gone: set[str] = set()  # uids to report once as unable to order
        self._dirty = threading.Event()  # something to sync
        self._wake = threading.Event()  # the main loop has news

    # --- called by modem threads -----------------------------------------------------------

    def claim(self, uid: str, worker: ModemWorker) -> str | None:
        with self._lock:
            owner = self.owners.get(uid)
            if owner is not None and owner != worker.spec.path and owner in self.workers:
                return owner
            self.owners[uid] = worker.spec.path
            self.gone.discard(uid)
            return None

    def modem_changed(self, worker: ModemWorker) -> None:
        self.outbox.modem_seen(
            worker.state.port,
            uid=worker.state.uid,
            phone=worker.state.phone,
            number_source=worker.state.number_source,
            mapping=worker.state.mapping,
            present=1,
        )
        self._dirty.set()
        self._wake.set()

    def modem_gone(self, worker: ModemWorker) -> None:
        if self.stop.is_set():
            return  # the agent is stopping: _shutdown says goodbye for every modem
        uid = worker.state.uid
        with self._lock:
            owned = bool(uid) and self.owners.get(uid) == worker.spec.path
            if owned:
                del self.owners[uid]
                if uid in self.synced:
                    self.gone.add(uid)  # leaves the stock now, not when heartbeats lapse
        if owned:
            self.outbox.modem_seen(worker.state.port, present=0, can_order=0)
            self._dirty.set()
            self._wake.set()

    def ready(self, uid: str) -> bool:
        """May this modem's SMS be posted? Not while it is here but unknown to the server
        (sync first); a modem that is gone may have been synced by an earlier run."""
        return uid in self.synced or uid not in self.owners

    def _refuse(self, error: ServerError) -> None:
        self.key_refused = error
        self.stop.set()
        self._wake.set()

    # --- the main loop ---------------------------------------------------------------------

    def run(self) -> int:
        self.deliverer.start()
        next_scan = 0.0
        next_beat = time.monotonic() + self.settings.heartbeat_seconds
        next_sync_try, sync_failures = 0.0, 0
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= next_scan:
                self.scan()
                next_scan = now + self.settings.scan_seconds
            if (self._dirty.is_set() or self.gone) and now >= next_sync_try:
                self._dirty.clear()
                if self._sync():
                    sync_failures = 0
                else:
                    # The server may still be starting: try again soon, then less often.
                    self._dirty.set()
                    sync_failures += 1
                    next_sync_try = now + min(30.0, 2.0**sync_failures)
            if now >= next_beat:
                self._heartbeat()
                next_beat = now + self.settings.heartbeat_seconds
            self._wake.wait(0.5)
            self._wake.clear()
        self._shutdown()
        return 2 if self.key_refused else 0

    def scan(self) -> None:
        """Start a thread for every port not served yet: the given ones, else all found."""
        if self.settings.ports:
            candidates = list(self.settings.ports)
            quiet = False
        else:
            found = set(self.list_ports())
            for pattern in self.settings.scan_globs:
                found.update(glob.glob(pattern))
            candidates = [PortSpec(path) for path in sorted(found)]
            quiet = True
        with self._lock:
            for spec in candidates:
                worker = self.workers.get(spec.path)
                if worker is not None and (worker.is_alive() or self._serving(worker.duplicate_of)):
                    continue
                worker = ModemWorker(spec, self, quiet_probe=quiet)
                self.workers[spec.path] = worker
                worker.start()

    def _serving(self, path: str | None) -> bool:
        worker = self.workers.get(path) if path else None
        return worker is not None and worker.is_alive()

    def _live(self) -> list[ModemState]:
        with self._lock:
            return [
                w.state
                for w in self.workers.values()
                if w.is_alive()
                and w.duplicate_of is None
                and w.state.uid
                and self.owners.get(w.state.uid) == w.spec.path
            ]

    def _sync(self) -> bool:
        """Sync what changed; report modems that left. False when the server was not reached."""
        changed = [
            state
            for state in self._live()
            if state.phone and self.synced.get(state.uid or "") != state.sync_key()
        ]
        try:
            if changed:
                errors = self.server.sync([state.sync_item() for state in changed])
                rejected = {error.get("uid") for error in errors}
                for error in errors:
                    log.error("sync refused modem %s: %s", error.get("uid"), error.get("message"))
                for state in changed:
                    if state.uid not in rejected:
                        self.synced[state.uid] = state.sync_key()
                        log.info("synced modem %s (%s, %s)", state.uid, state.phone, state.mapping)
                if set(self.synced) & {s.uid for s in changed}:
                    self._heartbeat()  # online at once, not a heartbeat period later
            gone = sorted(self.gone)
            if gone:
                self.server.heartbeat([{"uid": uid, "can_order": False} for uid in gone])
                self.gone.difference_update(gone)
                log.info("no longer offered: %s", ", ".join(gone))
        except ServerError as exc:
            self._server_failed("sync", exc)
            return False
        self.deliverer.wake.set()
        return True

    def _heartbeat(self) -> None:
        items = [
            {"uid": state.uid, "signal": state.signal, "can_order": state.can_order}
            for state in self._live()
            if state.uid in self.synced
        ]
        if not items:
            return
        try:
            unknown = self.server.heartbeat(items)
        except ServerError as exc:
            self._server_failed("heartbeat", exc)
            return
        self.outbox.modems_heartbeat_ok([str(item["uid"]) for item in items], time.time())
        if unknown:
            # The server forgot them (a new database): sync again.
            log.warning("the server does not know %s; syncing again", ", ".join(unknown))
            for uid in unknown:
                self.synced.pop(uid, None)
            self._dirty.set()

    def _server_failed(self, what: str, exc: ServerError) -> None:
        if exc.key_refused:
            log.error("the server refused the agent key (%s): stopping", exc)
            self._refuse(exc)
        else:
            log.warning("%s failed: %s", what, exc)

    def check_key(self) -> None:
        """At start: a refused key stops the agent at once (exit 2); an unreachable server
        does not (SMS are still taken from the SIMs and wait in the outbox)."""
        try:
            self.server.heartbeat([])
        except ServerError as exc:
            if exc.key_refused:
                raise
            log.warning("server not reachable yet: %s", exc)

    def _shutdown(self) -> None:
        with self._lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.stopping.set()
        for worker in workers:
            worker.join(timeout=10)
        self.deliverer.join(timeout=20)
        self._goodbye([w.state for w in workers if w.state.uid in self.synced])

    def _goodbye(self, modems: list[ModemState]) -> None:
        """A clean stop takes the modems off sale at once: nobody is there to read their SMS
        (a crash leaves it to MODEM_ONLINE_SECONDS on the server)."""
        if not modems or self.key_refused:
            return
        self.server.timeout = 5.0
        try:
            self.server.heartbeat([{"uid": m.uid, "can_order": False} for m in modems])
        except ServerError as exc:
            log.warning("could not take the modems off sale: %s", exc)
            return
        for modem in modems:
            self.outbox.modem_seen(
                modem.port, can_order=0, last_heartbeat_at=None, note="agent stopped"
            )
        log.info("modems taken off sale: %s", ", ".join(str(m.uid) for m in modems))


def system_ports() -> list[str]:
    from serial.tools import list_ports

    return [port.device for port in list_ports.comports()]


__all__ = ["Agent", "ModemWorker", "Settings", "port_name"]
