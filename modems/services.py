"""Writes on modems: the agent's sync and batch heartbeat."""

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from modems.carriers import carrier_of
from modems.models import Modem, Operator
from modems.phone import PhoneNumberError, normalize_phone
from zerotp.db import on_postgresql, prepared
from zerotp.text import unstorable

_SYNC_FIELDS = ("phone_number", "provider", "carrier", "signal", "mapping")
_OPERATORS = frozenset(Operator.values)  # Operator.values builds a new list on every read


@dataclass
class SyncResult:
    synced: int = 0
    created: int = 0
    updated: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, index: int, uid: Any, code: str, message: str) -> None:
        self.errors.append(
            {
                "index": index,
                "uid": uid if isinstance(uid, str) and not unstorable(uid) else None,
                "code": code,
                "message": message,
            }
        )


class ItemError(ValueError):
    """One item of a batch is malformed; `index` says which, when known."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


def _signal(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ItemError("signal must be a whole number from 0 to 100, or null.")
    return value


def _text(item: dict, name: str, max_length: int) -> str:
    value = item.get(name) or ""
    if not isinstance(value, str) or len(value) > max_length or unstorable(value):
        raise ItemError(f"{name} must be a string of at most {max_length} characters.")
    return value.strip()


def uid_of(item: Any) -> str:
    if not isinstance(item, dict):
        raise ItemError("Each modem must be a JSON object.")
    uid = item.get("uid")
    if not isinstance(uid, str) or not uid.strip() or len(uid) > 64 or unstorable(uid):
        raise ItemError("uid is required: a string of 1 to 64 characters.")
    return uid.strip()


def _sync_fields(item: dict) -> dict[str, Any]:
    """The stored fields this item sets; fields it leaves out keep their values."""
    fields: dict[str, Any] = {}
    if "phone_number" in item:
        raw = item["phone_number"]
        try:
            fields["phone_number"] = None if raw in (None, "") else normalize_phone(raw)
        except PhoneNumberError as exc:
            raise ItemError(str(exc)) from None
    if "provider" in item:
        fields["provider"] = _text(item, "provider", 64)
        fields["carrier"] = carrier_of(fields["provider"])
    if "signal" in item:
        fields["signal"] = _signal(item["signal"])
    if "mapping" in item:
        if item["mapping"] not in _OPERATORS:
            raise ItemError(f"mapping must be one of {', '.join(Operator.values)}.")
        fields["mapping"] = item["mapping"]
    return fields


def modems_sync(*, reseller: User, items: list[Any]) -> SyncResult:
    """Create or update the reseller's modems by uid. A bad item is reported and skipped;
    the rest of the batch is applied. Repeating the same body changes nothing."""
    result = SyncResult()
    wanted: dict[str, tuple[int, dict[str, Any]]] = {}
    for index, item in enumerate(items):
        try:
            uid = uid_of(item)
            fields = _sync_fields(item)
        except ItemError as exc:
            result.reject(
                index,
                item.get("uid") if isinstance(item, dict) else None,
                "invalid_request",
                str(exc),
            )
            continue
        if uid in wanted:
            result.reject(index, uid, "duplicate_uid", f"uid {uid} appears twice in this batch.")
            continue
        wanted[uid] = (index, fields)

    if _nothing_to_change(reseller, wanted):
        # Agents resend their whole pool every few minutes: answer without taking locks.
        result.synced = len(wanted)
        return result
    for attempt in range(3):
        try:
            with transaction.atomic():
                outcome = _apply_sync(reseller, wanted)
            break
        except IntegrityError:
            # Another reseller claimed one of these numbers between our read and our write:
            # run again, and that item will be reported as a conflict this time.
            if attempt == 2:
                raise
    result.synced, result.created, result.updated, conflicts = outcome
    result.errors += conflicts
    result.errors.sort(key=lambda e: e["index"])
    return result


def _nothing_to_change(reseller: User, wanted: dict[str, tuple[int, dict[str, Any]]]) -> bool:
    """True when every item names an existing modem of the reseller and repeats its stored
    fields (then no number moves and no conflict is possible): one unlocked read."""
    if not wanted:
        return True
    stored = {
        uid: dict(zip(_SYNC_FIELDS, values, strict=True))
        for uid, *values in Modem.objects.filter(reseller=reseller, uid__in=list(wanted))
        .order_by()
        .values_list("uid", *_SYNC_FIELDS)
    }
    return len(stored) == len(wanted) and all(
        stored[uid][name] == value
        for uid, (_, fields) in wanted.items()
        for name, value in fields.items()
    )


def _apply_sync(
    reseller: User, wanted: dict[str, tuple[int, dict[str, Any]]]
) -> tuple[int, int, int, list[dict[str, Any]]]:
    conflicts = SyncResult()
    _reseller_batch_lock(reseller)
    existing = {
        m.uid: m
        for m in Modem.objects.select_for_update()
        .filter(reseller=reseller, uid__in=list(wanted))
        .order_by("id")
    }
    claimed = {f["phone_number"] for _, f in wanted.values() if f.get("phone_number")}
    holders = {m.phone_number: m for m in Modem.objects.filter(phone_number__in=claimed)}

    now = timezone.now()
    to_create: list[Modem] = []
    to_update: list[Modem] = []
    release_ids: set[int] = set()
    taken: dict[str, str] = {}
    for uid, (index, fields) in wanted.items():
        number = fields.get("phone_number")
        if number:
            holder = holders.get(number)
            if holder is not None and holder.reseller_id != reseller.pk:
                conflicts.reject(
                    index,
                    uid,
                    "phone_number_conflict",
                    f"{number} is held by another reseller's modem.",
                )
                continue
            if number in taken:
                conflicts.reject(
                    index,
                    uid,
                    "phone_number_conflict",
                    f"{number} is also claimed by uid {taken[number]} in this batch.",
                )
                continue
            taken[number] = uid
            if holder is not None and holder.uid != uid:
                release_ids.add(holder.pk)  # the number moves to this uid
        modem = existing.get(uid)
        if modem is None:
            to_create.append(
                Modem(reseller=reseller, uid=uid, created_at=now, updated_at=now, **fields)
            )
            continue
        changed = {name: value for name, value in fields.items() if getattr(modem, name) != value}
        if changed:
            if "phone_number" in changed and modem.phone_number:
                release_ids.add(modem.pk)
            for name, value in changed.items():
                setattr(modem, name, value)
            modem.updated_at = now
            to_update.append(modem)

    if release_ids:
        Modem.objects.filter(pk__in=release_ids).update(phone_number=None, updated_at=now)
    if to_update:
        Modem.objects.bulk_update(to_update, [*_SYNC_FIELDS, "updated_at"])
    if to_create:
        Modem.objects.bulk_create(to_create)
    synced = len(wanted) - len(conflicts.errors)
    return synced, len(to_create), len(to_update), conflicts.errors


class HeartbeatItem(NamedTuple):  # a thousand per request: a tuple is the cheapest record
    uid: str
    signal: int | None
    can_order: bool | None


def heartbeat_items(raw: list[Any]) -> list[HeartbeatItem]:
    """The batch's items, validated; ItemError with the index of the first bad one.

    A batch of a thousand well-formed items, the usual case, takes one pass of cheap type
    checks and one unstorable-text search over all the uids; a batch that fails them is
    walked again with `heartbeat_item` for the exact message."""
    items: list[HeartbeatItem] = []
    append = items.append
    for item in raw:
        if type(item) is not dict:
            break
        uid, signal, can_order = item.get("uid"), item.get("signal"), item.get("can_order")
        if not (
            type(uid) is str
            and len(uid) <= 64
            and (signal is None or (type(signal) is int and 0 <= signal <= 100))
            # Left out, can_order keeps the modem's setting; null is not a setting.
            and (type(can_order) is bool or (can_order is None and "can_order" not in item))
        ):
            break
        uid = uid.strip()
        if not uid:
            break
        append(HeartbeatItem(uid, signal, can_order))
    else:
        if not unstorable("".join(i.uid for i in items)):
            return items
    for index, item in enumerate(raw):
        try:
            heartbeat_item(item)
        except ItemError as exc:
            raise ItemError(str(exc), index) from None
    raise AssertionError("heartbeat_items: a batch failed the fast checks but no item did")


def heartbeat_item(item: Any) -> HeartbeatItem:
    uid = uid_of(item)
    can_order = item.get("can_order")
    if "can_order" in item and type(can_order) is not bool:
        raise ItemError("can_order must be true or false.")
    return HeartbeatItem(uid=uid, signal=_signal(item.get("signal")), can_order=can_order)


# One reseller's batches (heartbeat, sync) queue on this lock, so that two of them never
# lock the same modems in different orders; batches of different resellers touch
# disjoint rows and run side by side. Cheaper than locking a thousand rows in id order
# before updating them. The first number is this lock's namespace; resellers whose ids
# are equal modulo 2^31-1 would share a lock, which only makes one wait for the other.
_BATCH_LOCK_POSTGRES = "SELECT pg_advisory_xact_lock(7201, mod(%s::bigint, 2147483647)::int)"


def _reseller_batch_lock(reseller: User) -> None:
    """Serialise the reseller's modem batches until the transaction ends (PostgreSQL;
    SQLite runs one writer at a time anyway)."""
    if on_postgresql():
        with connection.cursor() as cursor:
            cursor.execute(prepared(_BATCH_LOCK_POSTGRES), [reseller.pk])


_HEARTBEAT_POSTGRES = """
UPDATE modems_modem AS m
SET last_heartbeat_at = %(now)s,
    online = true,
    signal = COALESCE(v.signal, m.signal),
    can_order = COALESCE(v.can_order, m.can_order)
FROM json_to_recordset(%(rows)s::json) AS v(uid text, signal int, can_order bool)
WHERE m.uid = v.uid AND m.reseller_id = %(reseller)s
RETURNING m.uid
"""

_HEARTBEAT_SQLITE = """
UPDATE modems_modem
SET last_heartbeat_at = %s,
    online = 1,
    signal = COALESCE(v.signal, modems_modem.signal),
    can_order = COALESCE(v.can_order, modems_modem.can_order)
FROM (
    SELECT json_extract(value, '$[0]') AS uid, json_extract(value, '$[1]') AS signal,
           json_extract(value, '$[2]') AS can_order
    FROM json_each(%s)
) AS v
WHERE modems_modem.reseller_id = %s AND modems_modem.uid = v.uid
RETURNING modems_modem.uid
"""


def modems_heartbeat(*, reseller: User, items: list[HeartbeatItem]) -> tuple[int, list[str]]:
    """Mark the listed modems seen now, in one set-based statement whatever the batch size.
    Returns the number updated and the uids this reseller never synced."""
    latest = {item.uid: item for item in items}  # a uid repeated in one batch: the last wins
    if not latest:
        return 0, []
    rows = list(latest.values())
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        if on_postgresql():
            _reseller_batch_lock(reseller)
            # One JSON document rather than three arrays: json.dumps is C, while psycopg
            # quotes array elements one by one in Python (a third of the request's time).
            payload = json.dumps(
                [{"uid": r.uid, "signal": r.signal, "can_order": r.can_order} for r in rows]
            )
            cursor.execute(
                prepared(_HEARTBEAT_POSTGRES),
                {"reseller": reseller.pk, "now": now, "rows": payload},
            )
        else:
            payload = json.dumps([[r.uid, r.signal, r.can_order] for r in rows])
            stamp = connection.ops.adapt_datetimefield_value(now)
            cursor.execute(_HEARTBEAT_SQLITE, [stamp, payload, reseller.pk])
        seen = {row[0] for row in cursor.fetchall()}
    return len(seen), [uid for uid in latest if uid not in seen]


def modems_mark_offline(*, now: datetime | None = None) -> int:
    """Clear `online` on the modems whose last heartbeat is older than
    MODEM_ONLINE_SECONDS (scheduled every minute): the order pick's index then skips them.
    Returns how many were marked."""
    since = (now or timezone.now()) - timedelta(seconds=settings.MODEM_ONLINE_SECONDS)
    silent = Q(last_heartbeat_at__lt=since) | Q(last_heartbeat_at__isnull=True)
    return Modem.objects.filter(silent, online=True).update(online=False)
