"""Seeding the bench database with COPY (psycopg 3 `cursor.copy`).

One code path builds both databases. The small one holds what the scenarios need and no
more: the catalogue, the bench buyers, the bench resellers with 1,000 modems each, the
pending orders that the inbound-SMS scenario completes and the finished orders that the
status scenario reads. The seeded one adds the crowd around them: the other buyers and
resellers, the rest of the modems and a history of closed orders with their inbound SMS,
order messages and ledger rows (hold, then capture or release).

While the big tables load, their secondary indexes and their unique and foreign-key
constraints are dropped (the database is ours) and rebuilt afterwards, which also checks
every foreign key in one pass. The stock's triggers are off too, and the counts are made
once at the end (`manage.py kept_counts --recount`). Ledger balances are then set from the
entries with one UPDATE, so each cached balance equals the sum of its entries by
construction.
"""

import json
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from accounts.keys import AGENT_KEY_PREFIX, API_KEY_PREFIX, key_digest, new_callback_secret
from bench.db import Database
from bench.project import manage
from bench.server import production_env
from modems.carriers import carrier_of

BATCH = 1000  # modems per bench reseller: one full heartbeat or sync batch
ORDER_TTL = 1200  # ORDER_TTL_SECONDS default
SHARE_PERCENT = 70  # RESELLER_SHARE_PERCENT default
HISTORY_DAYS = 180
BENCH_BALANCE = 10_000_000_000  # rupiah on each bench buyer's wallet after the seed
PENDING_PER_BUYER = 20  # MAX_ACTIVE_ORDERS default: the inbound-SMS orders' buyers hold this many
PROVIDERS = ("Telkomsel", "Indosat", "XL", "Tri", "Smartfren")
CARRIERS = {provider: carrier_of(provider) for provider in PROVIDERS}  # as a sync stores them
OPERATORS = ("normal", "promo", "special")
BIG_TABLES = (
    "modems_modem",
    "orders_order",
    "modems_inboundsms",
    "orders_ordermessage",
    "billing_ledgertransaction",
    "billing_ledgerentry",
)
COUNTED_TABLES = ("modems_modem", "orders_order")  # the stock's counts follow them

USER_COLUMNS = (
    "id", "password", "last_login", "is_superuser", "email", "is_active", "is_staff",
    "is_reseller", "date_joined", "callback_url", "callback_enabled", "callback_secret",
    "callback_secret_previous", "callback_secret_previous_until",
)  # fmt: skip
KEY_COLUMNS = ("id", "user_id", "kind", "prefix", "last4", "digest", "created_at", "revoked_at")
ACCOUNT_COLUMNS = ("id", "kind", "user_id", "balance", "created_at")
MODEM_COLUMNS = (
    "id", "reseller_id", "uid", "phone_number", "provider", "carrier", "signal", "mapping",
    "can_order", "disabled", "last_heartbeat_at", "online", "created_at", "updated_at",
)  # fmt: skip
ORDER_COLUMNS = (
    "id", "buyer_id", "application_id", "operator", "modem_id", "reseller_id", "phone_number",
    "price", "reseller_share", "custom_user_id", "status", "otp_code", "sms_text", "created_at",
    "expires_at", "completed_at", "closed_at",
)  # fmt: skip
SMS_COLUMNS = (
    "id", "modem_id", "reseller_id", "phone_number", "sender", "text", "message_id",
    "received_at", "created_at", "otp_code",
)  # fmt: skip
MESSAGE_COLUMNS = ("id", "order_id", "sms_id", "otp_code", "created_at")
TRANSACTION_COLUMNS = ("id", "reference", "kind", "memo", "created_at")
ENTRY_COLUMNS = ("id", "transaction_id", "account_id", "amount", "created_at")

Log = Callable[[str], None]


@dataclass(frozen=True)
class Sizes:
    """How much to seed. The bench buyers and resellers are the first of each."""

    buyers: int
    resellers: int
    modems: int
    apps: int
    orders: int
    bench_buyers: int
    bench_resellers: int
    sms_orders: int
    status_orders: int

    @property
    def sms_buyers(self) -> int:
        """Buyers of the inbound-SMS scenario's pending orders, after the bench buyers, so
        that the order scenario's buyers hold no more pending orders than usual."""
        return -(-self.sms_orders // PENDING_PER_BUYER)

    def problems(self) -> list[str]:
        found = []
        if self.buyers < self.bench_buyers + self.sms_buyers:
            found.append(f"--buyers must be at least {self.bench_buyers + self.sms_buyers}")
        if self.resellers < self.bench_resellers:
            found.append(f"--resellers must be at least {self.bench_resellers}")
        if self.modems < self.bench_resellers * BATCH:
            found.append(f"--modems must be at least {self.bench_resellers * BATCH}")
        if self.modems > self.bench_resellers * BATCH and self.resellers == self.bench_resellers:
            found.append("modems beyond the bench resellers' need more --resellers")
        per_reseller = -(-self.sms_orders // self.bench_resellers) - (
            -self.status_orders // self.bench_resellers
        )
        if per_reseller > BATCH:
            found.append("--sms-orders plus the status orders exceed the bench modems")
        if self.modems and -(-self.orders // self.modems) > self.apps - 1:
            # A number serves an application once, ever (a constraint): the history gives
            # each modem's number at most one order per application but the bench's own.
            found.append("--orders beyond (--apps - 1) per modem would use a number twice")
        return found


@dataclass
class Fixture:
    """What the load and the EXPLAIN step need to know about the seeded rows."""

    order_app_id: int
    order_service: str  # the order application's sms-activate service code (getNumber)
    sms_app_id: int
    buyer_keys: list[str]
    agent_keys: list[str]
    # Per bench reseller, its modems exactly as stored: uid, phone, provider, signal, mapping.
    modems: list[list[tuple[str, str, str, int, str]]]
    # Per bench buyer, finished orders with one message each.
    status_orders: list[list[int]]
    # Pending orders, one per modem: bench reseller index, uid, phone number.
    sms_targets: list[tuple[int, str, str]]

    @classmethod
    def empty(cls) -> "Fixture":
        return cls(0, "", 0, [], [], [], [], [])

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> "Fixture":
        data = json.loads(path.read_text())
        data["modems"] = [[tuple(m) for m in ms] for ms in data["modems"]]
        data["sms_targets"] = [tuple(t) for t in data["sms_targets"]]
        return cls(**data)


@dataclass
class SeedReport:
    fixture: Fixture
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


class Clock:
    """Epoch seconds to timestamptz text for COPY, by two table look-ups."""

    def __init__(self, first: int, last: int) -> None:
        self.day0 = first // 86400
        self.days = [
            datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d ")
            for day in range(self.day0, last // 86400 + 1)
        ]
        self.hms = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}+00" for s in range(86400)]

    def __call__(self, t: int) -> str:
        return self.days[t // 86400 - self.day0] + self.hms[t % 86400]


class CopyStream:
    """Rows for one table, sent in chunks through one COPY ... FROM STDIN."""

    def __init__(self, copy: psycopg.Copy) -> None:
        self.copy = copy
        self.lines: list[str] = []
        self.rows = 0

    def flush(self) -> None:
        if self.lines:
            self.copy.write("".join(self.lines))
            self.rows += len(self.lines)
            self.lines.clear()


@contextmanager
def copy_streams(db: Database, tables: dict[str, Sequence[str]]) -> Iterator[dict[str, CopyStream]]:
    """One connection and COPY per table, all open at once so one loop can feed them."""
    with ExitStack() as stack:
        streams = {}
        for table, columns in tables.items():
            conn = stack.enter_context(db.connect())
            conn.execute("SET synchronous_commit = off")
            cursor = stack.enter_context(conn.cursor())
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            streams[table] = CopyStream(stack.enter_context(cursor.copy(statement)))
        yield streams
        for stream in streams.values():
            stream.flush()


@dataclass
class Deferred:
    """A table's secondary indexes and unique/foreign-key constraints, dropped for the load."""

    table: str
    indexes: list[str]
    constraints: list[tuple[str, str]]


def drop_secondary(conn: psycopg.Connection, tables: Sequence[str]) -> list[Deferred]:
    deferred = []
    for table in tables:
        constraints = conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('u', 'f') "
            "ORDER BY contype DESC, conname",
            [table],
        ).fetchall()
        for name, _ in constraints:
            conn.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    sql.Identifier(table), sql.Identifier(name)
                )
            )
        indexes = conn.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary AND NOT EXISTS ("
            "  SELECT 1 FROM pg_constraint k"
            "  WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)",
            [table],
        ).fetchall()
        for name, _ in indexes:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        deferred.append(Deferred(table, [d for _, d in indexes], list(constraints)))
    conn.commit()
    return deferred


def rebuild(conn: psycopg.Connection, deferred: Sequence[Deferred]) -> None:
    conn.execute("SET maintenance_work_mem = '512MB'")
    for item in deferred:
        for definition in item.indexes:
            conn.execute(definition)  # pg_get_indexdef's own text
        for name, definition in item.constraints:
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    sql.Identifier(item.table), sql.Identifier(name), sql.SQL(definition)
                )
            )
        conn.commit()


def _max_id(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(
        sql.SQL("SELECT COALESCE(MAX(id), 0) FROM {}").format(sql.Identifier(table))
    ).fetchone()
    return int(row[0]) if row else 0


def _reset_sequence(conn: psycopg.Connection, table: str) -> None:
    conn.execute(
        sql.SQL(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), COALESCE(MAX(id), 0) + 1, false) "
            "FROM {}"
        ).format(sql.Identifier(table)),
        [table],
    )


@dataclass(frozen=True)
class App:
    id: int
    code: str
    service: str  # the sms-activate protocol's name for it: its service code, else its slug
    # Per modem mapping (index into OPERATORS): the operator and price an order gets.
    offers: tuple[tuple[str, int], ...]


class Seeder:
    def __init__(self, db: Database, sizes: Sizes, log: Log) -> None:
        self.db, self.sizes, self.log = db, sizes, log
        self.now = int(time.time())
        self.start = self.now - HISTORY_DAYS * 86400 - 3600
        self.clock = Clock(self.start - 2 * 86400, self.now + 2 * 86400)
        self.report_rows: dict[str, int] = {}

    # --- ids -------------------------------------------------------------------------------
    def user_id(self, index: int) -> int:
        return self.user0 + index

    def reseller_user(self, reseller: int) -> int:
        return self.user0 + self.sizes.buyers + reseller

    def wallet(self, user_index: int) -> int:
        return self.account0 + 3 + user_index

    def reseller_wallet(self, reseller: int) -> int:
        return self.wallet(self.sizes.buyers + reseller)

    # --- steps -----------------------------------------------------------------------------
    def run(self) -> SeedReport:
        seconds: dict[str, float] = {}
        mark = time.perf_counter()

        def lap(step: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            seconds[step] = now - mark
            mark = now
            self.log(f"seed: {step} {seconds[step]:.1f} s")

        with self.db.connect() as conn:
            self._read_bases(conn)
            self._catalogue(conn)
            deferred = drop_secondary(conn, BIG_TABLES)
            # The stock's triggers would count row by row what one recount does at the end.
            for table in COUNTED_TABLES:
                conn.execute(
                    sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(sql.Identifier(table))
                )
        keys = self._people()
        lap("users, keys, wallets, modems")
        status_orders, targets = self._orders()
        lap("orders, SMS, messages, ledger")
        with self.db.connect() as conn:
            rebuild(conn, deferred)
            for table in COUNTED_TABLES:
                conn.execute(
                    sql.SQL("ALTER TABLE {} ENABLE TRIGGER USER").format(sql.Identifier(table))
                )
            lap("indexes and constraints")
            for table in (
                "accounts_user",
                "accounts_apikey",
                "billing_ledgeraccount",
                *BIG_TABLES,
            ):
                _reset_sequence(conn, table)
            conn.execute(
                "UPDATE billing_ledgeraccount a SET balance = s.total FROM ("
                "  SELECT account_id, SUM(amount) AS total FROM billing_ledgerentry"
                "  GROUP BY account_id) s WHERE a.id = s.account_id"
            )
            conn.commit()
        manage("kept_counts", "--recount", env=production_env(self.db.url))
        lap("stock counts")
        with self.db.connect(autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
        lap("balances and VACUUM ANALYZE")
        self._check_escrow()
        fixture = Fixture(
            order_app_id=self.order_app.id,
            order_service=self.order_app.service,
            sms_app_id=self.sms_app.id,
            buyer_keys=keys[0],
            agent_keys=keys[1],
            modems=[
                [self._bench_modem(r, pos) for pos in range(BATCH)]
                for r in range(self.sizes.bench_resellers)
            ],
            status_orders=status_orders,
            sms_targets=targets,
        )
        return SeedReport(fixture=fixture, rows=self.report_rows, seconds=seconds)

    def _read_bases(self, conn: psycopg.Connection) -> None:
        self.user0 = _max_id(conn, "accounts_user") + 1
        self.key0 = _max_id(conn, "accounts_apikey") + 1
        self.account0 = _max_id(conn, "billing_ledgeraccount") + 1
        self.modem0 = _max_id(conn, "modems_modem") + 1
        self.order0 = _max_id(conn, "orders_order") + 1
        self.sms0 = _max_id(conn, "modems_inboundsms") + 1
        self.message0 = _max_id(conn, "orders_ordermessage") + 1
        self.transaction0 = _max_id(conn, "billing_ledgertransaction") + 1
        self.entry0 = _max_id(conn, "billing_ledgerentry") + 1

    def _catalogue(self, conn: psycopg.Connection) -> None:
        """seed_demo's applications, plus generated ones without sender patterns up to
        --apps (at least two: the order scenarios use the first, the inbound-SMS
        scenario's orders the last). A generated application's normal pool is its
        cheapest, so getNumber, which takes the cheapest pool with stock, orders the pool
        the REST order scenario names; the demo ones' cheapest is mostly promo."""
        existing = conn.execute("SELECT COUNT(*) FROM orders_application").fetchone()
        count = int(existing[0]) if existing else 0
        created = datetime.fromtimestamp(self.start - 86400, UTC)
        generated = []
        for n in range(count + 1, max(self.sizes.apps, count + 2) + 1):
            row = conn.execute(
                "INSERT INTO orders_application "
                "(name, code, service_code, enabled, sender_patterns, otp_pattern, created_at) "
                "VALUES (%s, %s, %s, true, '', '', %s) RETURNING id",
                [f"Bench service {n}", f"bench-{n}", f"bench{n}", created],
            ).fetchone()
            assert row is not None
            generated.append(row[0])
            base = 2000 + 250 * (n % 8)
            conn.cursor().executemany(
                "INSERT INTO orders_applicationprice (application_id, operator, price) "
                "VALUES (%s, %s, %s)",
                [(row[0], op, base + 1000 * i) for i, op in enumerate(OPERATORS)],
            )
        conn.commit()
        prices: dict[int, dict[str, int]] = {}
        for app_id, operator, price in conn.execute(
            "SELECT application_id, operator, price FROM orders_applicationprice"
        ):
            prices.setdefault(app_id, {})[operator] = price
        self.apps = []
        for app_id, code, service in conn.execute(
            "SELECT id, code, COALESCE(service_code, code) FROM orders_application ORDER BY id"
        ):
            offered = prices.get(app_id, {})
            if not offered:
                continue
            fallback = (
                ("normal", offered["normal"])
                if "normal" in offered
                else next(iter(offered.items()))
            )
            offers = tuple((op, offered[op]) if op in offered else fallback for op in OPERATORS)
            self.apps.append(App(app_id, code, service, offers))
        self.order_app = next(a for a in self.apps if a.id == generated[0])
        self.sms_app = self.apps[-1]
        self.report_rows["orders_application"] = len(self.apps)

    # --- accounts, keys, modems ----------------------------------------------------------
    def _modem(self, g: int) -> tuple[int, str, str, str, int, int, bool, int]:
        """Modem g: reseller index, uid, phone, provider, signal, mapping index,
        can_order, last heartbeat. Bench resellers own modems 0 .. bench*BATCH - 1."""
        s = self.sizes
        bench = s.bench_resellers * BATCH
        if g < bench:
            reseller, position, mapping = g // BATCH, g % BATCH, 0
        else:
            others = s.resellers - s.bench_resellers
            reseller = s.bench_resellers + (g - bench) % others
            position = (g - bench) // others
            mapping = {8: 1, 9: 2}.get(g % 10, 0)
        can_order = g < bench or g % 50 != 7
        seen = self.now if g < bench or g % 50 != 17 else self.now - 3 * 86400
        return (
            reseller,
            f"COM{position + 1}",
            f"62812{g:08d}",
            PROVIDERS[g % len(PROVIDERS)],
            40 + g % 61,
            mapping,
            can_order,
            seen,
        )

    def _bench_modem(self, reseller: int, position: int) -> tuple[str, str, str, int, str]:
        _, uid, phone, provider, signal, mapping, _, _ = self._modem(reseller * BATCH + position)
        return (uid, phone, provider, signal, OPERATORS[mapping])

    def _people(self) -> tuple[list[str], list[str]]:
        """Users first (the keys and wallets that follow check their foreign key on
        commit), then keys, wallets, the platform accounts and the modems. Returns the
        bench buyers' API keys and the bench resellers' agent keys."""
        s = self.sizes
        joined = self.clock(self.start - 2 * 86400)
        with copy_streams(self.db, {"accounts_user": USER_COLUMNS}) as streams:
            users = streams["accounts_user"]
            for u in range(s.buyers + s.resellers):
                reseller = u >= s.buyers
                email = f"reseller{u - s.buyers}" if reseller else f"buyer{u}"
                secret = new_callback_secret()
                users.lines.append(
                    f"{self.user_id(u)}\t!bench\t\\N\tf\t{email}@bench.zerotp.local\tt\tf\t"
                    f"{'t' if reseller else 'f'}\t{joined}\t\tt\t{secret}\t\t\\N\n"
                )
        self.report_rows["accounts_user"] = users.rows
        buyer_keys: list[str] = []
        agent_keys: list[str] = []
        with copy_streams(
            self.db,
            {
                "accounts_apikey": KEY_COLUMNS,
                "billing_ledgeraccount": ACCOUNT_COLUMNS,
                "modems_modem": MODEM_COLUMNS,
            },
        ) as streams:
            keys, accounts = streams["accounts_apikey"], streams["billing_ledgeraccount"]
            for i, kind in enumerate(("external", "escrow", "revenue")):
                accounts.lines.append(f"{self.account0 + i}\t{kind}\t\\N\t0\t{joined}\n")
            key_id = self.key0
            for u in range(s.buyers + s.resellers):
                reseller = u >= s.buyers
                accounts.lines.append(f"{self.wallet(u)}\twallet\t{self.user_id(u)}\t0\t{joined}\n")
                kinds = [("api", API_KEY_PREFIX)]
                if reseller:
                    kinds.append(("agent", AGENT_KEY_PREFIX))
                for kind, prefix in kinds:
                    key = prefix + secrets.token_urlsafe(32)
                    keys.lines.append(
                        f"{key_id}\t{self.user_id(u)}\t{kind}\t{prefix}\t{key[-4:]}\t"
                        f"{key_digest(key)}\t{joined}\t\\N\n"
                    )
                    key_id += 1
                    if kind == "api" and u < s.bench_buyers:
                        buyer_keys.append(key)
                    if kind == "agent" and u - s.buyers < s.bench_resellers:
                        agent_keys.append(key)
            self._modems(streams["modems_modem"], joined)
        for table, stream in streams.items():
            self.report_rows[table] = stream.rows
        return buyer_keys, agent_keys

    def _modems(self, stream: CopyStream, joined: str) -> None:
        for g in range(self.sizes.modems):
            reseller, uid, phone, provider, signal, mapping, can_order, seen = self._modem(g)
            stream.lines.append(
                f"{self.modem0 + g}\t{self.reseller_user(reseller)}\t{uid}\t{phone}\t"
                f"{provider}\t{CARRIERS[provider]}\t{signal}\t{OPERATORS[mapping]}\t"
                f"{'t' if can_order else 'f'}\tf\t{self.clock(seen)}\t"
                f"{'t' if seen == self.now else 'f'}\t{joined}\t{joined}\n"
            )
            if len(stream.lines) >= 20000:
                stream.flush()

    # --- orders and the ledger -----------------------------------------------------------
    def _orders(self) -> tuple[list[list[int]], list[tuple[int, str, str]]]:
        with copy_streams(
            self.db,
            {
                "orders_order": ORDER_COLUMNS,
                "modems_inboundsms": SMS_COLUMNS,
                "orders_ordermessage": MESSAGE_COLUMNS,
                "billing_ledgertransaction": TRANSACTION_COLUMNS,
                "billing_ledgerentry": ENTRY_COLUMNS,
            },
        ) as streams:
            book = Book(self, streams)
            self._history(book)
            status_orders, targets = self._bench_orders(book)
            book.topups()
            book.flush()
        for table, stream in streams.items():
            self.report_rows[table] = stream.rows
        return status_orders, targets

    def _history(self, book: "Book") -> None:
        """Closed orders spread over HISTORY_DAYS: 80% finished (an SMS, a message, hold
        and capture), 12% cancelled and 8% expired (hold and release). Modem m serves
        applications m, m+1, ... in turn, so a number is used once per application, and
        never the bench's own application, which bench modems serve in `_bench_orders`."""
        s = self.sizes
        if not s.orders:
            return
        apps = [app for app in self.apps if app != self.sms_app]
        n_apps = len(apps)
        modems = []
        for g in range(s.modems):
            reseller, _, phone, _, _, mapping, _, _ = self._modem(g)
            modems.append((self.modem0 + g, reseller, phone, mapping))
        span = HISTORY_DAYS * 86400
        for k in range(s.orders):
            m = k % s.modems
            modem_id, reseller, phone, mapping = modems[m]
            app = apps[(m + k // s.modems) % n_apps]
            created = self.start + k * span // s.orders
            r = k % 25
            status = "finished" if r < 20 else "cancelled" if r < 23 else "expired"
            book.order(
                buyer=k % s.buyers,
                app=app,
                mapping=mapping,
                modem_id=modem_id,
                reseller=reseller,
                phone=phone,
                created=created,
                status=status,
                otp=f"{(k * 7919 + 13) % 1_000_000:06d}",
            )
            if k % 5000 == 4999:
                book.flush()
                if k % 200_000 == 199_999:
                    self.log(f"seed: {k + 1:,} historical orders written")

    def _bench_orders(self, book: "Book") -> tuple[list[list[int]], list[tuple[int, str, str]]]:
        """Pending orders on distinct bench modems for the inbound-SMS scenario (a minute
        old, expiring in a day, PENDING_PER_BUYER per buyer), and finished orders with one
        message for the status scenario, all for the pattern-less application."""
        s = self.sizes
        targets = []
        for i in range(s.sms_orders):
            reseller, position = i % s.bench_resellers, i // s.bench_resellers
            g = reseller * BATCH + position
            _, uid, phone, *_ = self._modem(g)
            book.order(
                buyer=s.bench_buyers + i // PENDING_PER_BUYER,
                app=self.sms_app,
                mapping=0,
                modem_id=self.modem0 + g,
                reseller=reseller,
                phone=phone,
                created=self.now - 60,
                status="pending",
                otp="",
            )
            targets.append((reseller, uid, phone))
        status_orders: list[list[int]] = [[] for _ in range(s.bench_buyers)]
        for i in range(s.status_orders):
            reseller, position = i % s.bench_resellers, BATCH - 1 - i // s.bench_resellers
            g = reseller * BATCH + position
            _, _, phone, *_ = self._modem(g)
            order_id = book.order(
                buyer=i % s.bench_buyers,
                app=self.sms_app,
                mapping=0,
                modem_id=self.modem0 + g,
                reseller=reseller,
                phone=phone,
                created=self.now - 3600 + i,
                status="finished",
                otp=f"{(i * 7919 + 7) % 1_000_000:06d}",
            )
            status_orders[i % s.bench_buyers].append(order_id)
        book.flush()
        return status_orders, targets

    def _check_escrow(self) -> None:
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT (SELECT balance FROM billing_ledgeraccount WHERE kind = 'escrow'), "
                "(SELECT COALESCE(SUM(price), 0) FROM orders_order WHERE status = 'pending')"
            ).fetchone()
        assert row is not None
        if row[0] != row[1]:
            raise RuntimeError(f"escrow {row[0]} != pending orders' prices {row[1]}")


class Book:
    """Writes orders with their SMS, messages and ledger rows, numbering every row."""

    def __init__(self, seeder: Seeder, streams: dict[str, CopyStream]) -> None:
        self.seeder, self.streams = seeder, streams
        self.clock = seeder.clock
        self.orders = streams["orders_order"].lines
        self.sms = streams["modems_inboundsms"].lines
        self.messages = streams["orders_ordermessage"].lines
        self.transactions = streams["billing_ledgertransaction"].lines
        self.entries = streams["billing_ledgerentry"].lines
        self.next_order = seeder.order0
        self.next_sms = seeder.sms0
        self.next_message = seeder.message0
        self.next_transaction = seeder.transaction0
        self.next_entry = seeder.entry0
        self.external = seeder.account0
        self.escrow = seeder.account0 + 1
        self.revenue = seeder.account0 + 2
        self.spent = [0] * seeder.sizes.buyers  # held or captured per buyer

    def flush(self) -> None:
        for stream in self.streams.values():
            stream.flush()

    def _transaction(self, reference: str, kind: str, at: str, legs: list[tuple[int, int]]) -> None:
        tx = self.next_transaction
        self.next_transaction += 1
        self.transactions.append(f"{tx}\t{reference}\t{kind}\t\t{at}\n")
        entry = self.next_entry
        for account, amount in legs:
            self.entries.append(f"{entry}\t{tx}\t{account}\t{amount}\t{at}\n")
            entry += 1
        self.next_entry = entry

    def order(
        self,
        *,
        buyer: int,
        app: App,
        mapping: int,
        modem_id: int,
        reseller: int,
        phone: str,
        created: int,
        status: str,
        otp: str,
    ) -> int:
        seeder, clock = self.seeder, self.clock
        order_id = self.next_order
        self.next_order += 1
        operator, price = app.offers[mapping]
        buyer_id, wallet = seeder.user_id(buyer), seeder.wallet(buyer)
        reseller_id = seeder.reseller_user(reseller)
        at = clock(created)
        expires = clock(created + (86400 if status == "pending" else ORDER_TTL))
        self._transaction(
            f"order:{order_id}:hold", "hold", at, [(wallet, -price), (self.escrow, price)]
        )
        if status == "finished":
            share = price * SHARE_PERCENT // 100
            done = clock(created + 40)
            text = f"Your code is {otp}"
            self.orders.append(
                f"{order_id}\t{buyer_id}\t{app.id}\t{operator}\t{modem_id}\t{reseller_id}\t"
                f"{phone}\t{price}\t{share}\t\\N\tfinished\t{otp}\t{text}\t{at}\t{expires}\t"
                f"{done}\t{clock(created + 300)}\n"
            )
            sms = self.next_sms
            self.next_sms += 1
            self.sms.append(
                f"{sms}\t{modem_id}\t{reseller_id}\t{phone}\t{app.code}\t{text}\t\\N\t"
                f"{clock(created + 35)}\t{done}\t{otp}\n"
            )
            self.messages.append(f"{self.next_message}\t{order_id}\t{sms}\t{otp}\t{done}\n")
            self.next_message += 1
            self._transaction(
                f"order:{order_id}:capture",
                "capture",
                done,
                [
                    (self.escrow, -price),
                    (seeder.reseller_wallet(reseller), share),
                    (self.revenue, price - share),
                ],
            )
            self.spent[buyer] += price
        elif status == "pending":
            self.orders.append(
                f"{order_id}\t{buyer_id}\t{app.id}\t{operator}\t{modem_id}\t{reseller_id}\t"
                f"{phone}\t{price}\t\\N\t\\N\tpending\t\\N\t\\N\t{at}\t{expires}\t\\N\t\\N\n"
            )
            self.spent[buyer] += price
        else:
            closed = created + (120 if status == "cancelled" else ORDER_TTL + 30)
            closed_at = clock(closed)
            self.orders.append(
                f"{order_id}\t{buyer_id}\t{app.id}\t{operator}\t{modem_id}\t{reseller_id}\t"
                f"{phone}\t{price}\t\\N\t\\N\t{status}\t\\N\t\\N\t{at}\t{expires}\t\\N\t"
                f"{closed_at}\n"
            )
            self._transaction(
                f"order:{order_id}:release",
                "release",
                closed_at,
                [(self.escrow, -price), (wallet, price)],
            )
        return order_id

    def topups(self) -> None:
        """One top-up per buyer: what they spent plus what they keep."""
        seeder = self.seeder
        at = self.clock(seeder.start - 86400)
        for buyer, spent in enumerate(self.spent):
            keep = BENCH_BALANCE if buyer < seeder.sizes.bench_buyers else 50_000 * (1 + buyer % 9)
            amount = spent + keep
            self._transaction(
                f"topup:bench:{buyer}",
                "topup",
                at,
                [(seeder.wallet(buyer), amount), (self.external, -amount)],
            )


def seed(db: Database, sizes: Sizes, log: Log) -> SeedReport:
    return Seeder(db, sizes, log).run()


def ledger_check_code() -> str:
    """Python for `manage.py shell -c`: prints each ledger difference, exits 1 on any."""
    return (
        "import sys\n"
        "from billing.services import ledger_differences\n"
        "problems = ledger_differences()\n"
        "print('\\n'.join(problems[:20]) or 'ledger consistent')\n"
        "sys.exit(1 if problems else 0)\n"
    )


def describe(rows: dict[str, Any]) -> str:
    return ", ".join(f"{table} {count:,}" for table, count in rows.items())
