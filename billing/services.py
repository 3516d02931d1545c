"""Money movements. Each is one ledger transaction: entries summing to zero, a unique
reference, and the cached balances updated in the same database transaction.

Locks are taken in one fixed order: user wallets first (by user id), then platform
accounts. The platform accounts are the rows every order touches, so they are locked last
and held for the shortest time, and no two movements can wait on each other.

Each leg is one `UPDATE ... RETURNING id` that finds its account by kind and owner, so a
movement needs no lookups before it: a debit that would go below zero matches no row
(the check constraint stands behind it), and a credit to an account not yet created
creates it.
"""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, DataError, connection, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from billing.models import LedgerAccount, LedgerEntry, LedgerTransaction, TopUp, Withdrawal
from zerotp import errors
from zerotp.db import SqlValue, pipeline, prepared, writes_in_one_statement
from zerotp.money import rupiah

Kind = LedgerAccount.Kind
TxKind = LedgerTransaction.Kind
_PLATFORM_ORDER: dict[str, int] = {
    Kind.EXTERNAL: 0,
    Kind.ESCROW: 1,
    Kind.REVENUE: 2,
    Kind.PAYOUTS_PENDING: 3,
}


class AlreadyBooked(Exception):
    """A movement with this reference exists: it must not happen twice."""


@dataclass(frozen=True)
class Leg:
    """An amount for one account: a user's wallet (`user_id`) or a platform account."""

    kind: str
    amount: int
    user_id: int | None = None

    @classmethod
    def wallet(cls, user: User | int, amount: int) -> "Leg":
        return cls(Kind.WALLET, amount, user if isinstance(user, int) else user.pk)

    @property
    def lock_order(self) -> tuple[int, int]:
        if self.kind == Kind.WALLET:
            return (0, self.user_id or 0)
        return (1, _PLATFORM_ORDER[self.kind])


def platform_accounts(*kinds: str) -> dict[str, LedgerAccount]:
    found = {a.kind: a for a in LedgerAccount.objects.filter(kind__in=kinds, user__isnull=True)}
    for kind in kinds:
        if kind not in found:
            found[kind], _ = LedgerAccount.objects.get_or_create(kind=kind, user=None)
    return found


def wallet_of(user: User | int) -> LedgerAccount:
    user_id = user if isinstance(user, int) else user.pk
    account, _ = LedgerAccount.objects.get_or_create(kind=Kind.WALLET, user_id=user_id)
    return account


def platform_balance(kind: str) -> int:
    """A platform account's balance (escrow, revenue, payouts-pending ...); 0 before its
    first movement."""
    balance = LedgerAccount.objects.filter(kind=kind, user__isnull=True).values_list(
        "balance", flat=True
    )
    return balance.first() or 0


def wallet_balance(user: User) -> int:
    balance = LedgerAccount.objects.filter(user=user).values_list("balance", flat=True).first()
    return balance or 0


_TABLE = LedgerAccount._meta.db_table


def _apply(leg: Leg) -> int | None:
    """Move the leg's amount; the account's id, or None if a debit would overdraw it."""
    sql = f"UPDATE {_TABLE} SET balance = balance + %s WHERE kind = %s AND user_id "
    params: list[SqlValue] = [leg.amount, leg.kind]
    if leg.user_id is None:
        sql += "IS NULL"
    else:
        sql += "= %s"
        params.append(leg.user_id)
    if _debit_checked(leg):
        sql += " AND balance >= %s"
        params.append(-leg.amount)
    with connection.cursor() as cursor:
        cursor.execute(sql + " RETURNING id", params)
        row = cursor.fetchone()
    return row[0] if row else None


def _insert_transaction(reference: str, kind: str, memo: str) -> int | None:
    """The new transaction's id, or None if the reference is taken: the unique index
    decides, in one statement and without a savepoint."""
    table = LedgerTransaction._meta.db_table
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (reference, kind, memo, created_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (reference) DO NOTHING RETURNING id",
            [reference, kind, memo, now],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def transfer(*, reference: str, kind: str, legs: Sequence[Leg], memo: str = "") -> int:
    """Book one movement; returns the ledger transaction's id. Raises AlreadyBooked for a
    reused reference and InsufficientBalance when a debit would take a wallet or escrow
    below zero. Either way the caller's transaction must roll back (it does, when the
    exception leaves its `atomic` block)."""
    _check_legs(reference, legs)
    legs = sorted(legs, key=lambda leg: leg.lock_order)
    if writes_in_one_statement():
        return _transfer_in_one_statement(reference, kind, memo, legs)
    # No savepoint of its own: any failure here aborts the whole enclosing transaction.
    with transaction.atomic(savepoint=False):
        tx_id = _insert_transaction(reference, kind, memo)
        if tx_id is None:
            raise AlreadyBooked(reference)
        entries = []
        for leg in legs:
            account_id = _apply(leg)
            if account_id is None and (leg.amount > 0 or leg.kind == Kind.EXTERNAL):
                # user_id=None is a platform account (IS NULL); the plugin's lookup type omits None.
                LedgerAccount.objects.get_or_create(kind=leg.kind, user_id=leg.user_id)  # type: ignore[misc]
                account_id = _apply(leg)
            if account_id is None:
                raise errors.InsufficientBalance(
                    _("The balance is below %(amount)s.") % {"amount": rupiah(-leg.amount)}
                )
            entries.append(
                LedgerEntry(transaction_id=tx_id, account_id=account_id, amount=leg.amount)
            )
        LedgerEntry.objects.bulk_create(entries)
    return tx_id


def _check_legs(reference: str, legs: Sequence[Leg]) -> None:
    if len(legs) < 2 or sum(leg.amount for leg in legs) != 0:
        raise ValueError(f"Ledger legs of {reference} must be two or more and sum to zero.")
    if any(leg.amount == 0 for leg in legs):
        raise ValueError(f"Ledger legs of {reference} must not be zero.")


def _debit_checked(leg: Leg) -> bool:
    """A debit the account must cover: every account but the external source."""
    return leg.amount < 0 and leg.kind != Kind.EXTERNAL


# SQLSTATEs zerotp_assert raises (billing migration 0003) when a movement did not happen.
_TAKEN, _SHORT = "ZT001", "ZT002"


@dataclass(frozen=True)
class WrittenRow:
    """The row a statement writes before the movement booked for it, in the same statement
    (PostgreSQL): the CTE that returns it, the column holding the amount to move, and the
    reference, which is `prefix` + the row's id + `suffix` (an order's `order:<id>:hold`)."""

    cte: str
    amount_column: str
    prefix: str
    suffix: str

    def describe(self) -> str:
        return f"{self.prefix}<new>{self.suffix}"


@dataclass(frozen=True)
class Movement:
    """A ledger movement as data-modifying CTEs of one PostgreSQL statement (`_movement`);
    `statement` writes the whole statement, `run` runs it."""

    ctes: str  # "tx AS (...), leg0 AS (...), ..., entries AS (...)"
    params: dict[str, SqlValue]
    reference: str
    legs: list[Leg]
    row: WrittenRow | None

    def statement(self, row_sql: str = "", leading: str = "") -> str:
        """The whole statement: `row_sql` as the written row's CTE (when there is one) and the
        movement's, then that row (NULLs when it wrote none) and the movement's own check.
        The check raises inside the statement when the row was written but the reference
        was taken or a leg refused, so the statement undoes itself, with or without a
        transaction around it; CASE makes the reference's check come first. `leading`:
        CTEs the row's statement reads, written before it."""
        row = self.row
        written = f"NOT EXISTS (SELECT FROM {row.cte}) OR " if row else ""
        check = (
            f"CASE WHEN zerotp_assert({written}EXISTS (SELECT FROM tx), '{_TAKEN}', "
            "%(mv_reference)s) "
            f"THEN zerotp_assert({written}(SELECT count(*) FROM entries) = {len(self.legs)}, "
            f"'{_SHORT}', %(mv_reference)s) END"
        )
        if row is None:
            return f"WITH {self.ctes}\nSELECT (SELECT id FROM tx), {check}"
        leading = f"{leading},\n" if leading else ""
        return (
            f"WITH {leading}{row.cte} AS ({row_sql}),\n{self.ctes}\n"
            f"SELECT {row.cte}.*, {check} FROM (SELECT 1) AS one LEFT JOIN {row.cte} ON true"
        )

    def run(
        self,
        sql: str,
        params: dict[str, SqlValue],
        *,
        first: tuple[str, dict[str, SqlValue]] | None = None,
    ) -> tuple:
        """Run `statement`'s SQL; the row it selects. AlreadyBooked for a reference taken,
        InsufficientBalance for a debit refused: the statement has then changed nothing.
        `first`: a statement to run just before it, sent with it in one round trip and one
        transaction, which ends as soon as the server has run both (an order's wallet
        lock: zerotp.db.pipeline)."""
        try:
            with connection.cursor() as cursor:
                if first is None:
                    cursor.execute(prepared(sql), params)
                else:
                    with pipeline():  # its end sends the sync: the commit needs no reply
                        cursor.execute(prepared(first[0]), first[1])
                        cursor.execute(prepared(sql), params)
                return cursor.fetchone()
        except DatabaseError as exc:
            state = getattr(exc.__cause__, "sqlstate", None)
            if state == _TAKEN:
                raise AlreadyBooked(self.reference) from None
            if state == _SHORT:
                short = next((-leg.amount for leg in self.legs if _debit_checked(leg)), 0)
                below = f"the {self.row.amount_column}" if self.row else rupiah(short)
                raise errors.InsufficientBalance(
                    _("The balance is below %(amount)s.") % {"amount": below}
                ) from None
            raise


def hold_for(row: WrittenRow, buyer: User | int) -> Movement:
    """`hold` of the amount in the row the same statement writes (a new order's price)."""
    return _movement(kind=TxKind.HOLD, legs=hold_legs(buyer, 1), row=row)


def release_for(row: WrittenRow, buyer: User | int) -> Movement:
    """`release` of the amount in the row the same statement writes (a cancelled order's)."""
    return _movement(kind=TxKind.RELEASE, legs=release_legs(buyer, 1), row=row)


def _movement(
    *,
    kind: str,
    legs: Sequence[Leg],
    reference: str = "",
    row: WrittenRow | None = None,
    memo: str = "",
) -> Movement:
    """`transfer` on PostgreSQL as CTEs of one statement, doing in order what the portable
    path does in four or more round trips.

    The transaction row comes first; each leg runs only once the one before it has
    (`EXISTS` on it is a one-time filter, evaluated before the leg touches a row), so the
    accounts are locked in the legs' lock order, and a taken reference or a refused debit
    stops the legs after it. A credit creates an account that does not exist yet
    (`ON CONFLICT ... DO UPDATE`); a debit is an UPDATE that matches no row when it would
    overdraw. For a `row`, nothing is booked unless the row was written, the reference is
    read from it, and each leg's amount (then +1 or -1) is multiplied by the row's amount."""
    reference = row.describe() if row else reference
    _check_legs(reference, legs)
    legs = sorted(legs, key=lambda leg: leg.lock_order)
    accounts, entries = _TABLE, LedgerEntry._meta.db_table
    params: dict[str, SqlValue] = {
        "mv_reference": reference,
        "mv_kind": kind,
        "mv_memo": memo,
        "mv_now": connection.ops.adapt_datetimefield_value(timezone.now()),
    }
    reference_sql, scale, only_if_written = "%(mv_reference)s", "", ""
    if row is not None:
        params |= {"mv_prefix": row.prefix, "mv_suffix": row.suffix}
        reference_sql = f"%(mv_prefix)s::text || (SELECT id FROM {row.cte}) || %(mv_suffix)s::text"
        scale = f" * (SELECT {row.amount_column} FROM {row.cte})"
        only_if_written = f" WHERE EXISTS (SELECT FROM {row.cte})"
    ctes = [
        f"tx AS (INSERT INTO {LedgerTransaction._meta.db_table} (reference, kind, memo, "
        f"created_at) SELECT {reference_sql}, %(mv_kind)s, %(mv_memo)s, %(mv_now)s"
        f"{only_if_written} ON CONFLICT (reference) DO NOTHING RETURNING id)"
    ]
    previous = "tx"
    for index, leg in enumerate(legs):
        name, p = f"leg{index}", f"mv_leg{index}_"
        params |= {p + "kind": leg.kind, p + "user": leg.user_id, p + "amount": leg.amount}
        amount = f"(%({p}amount)s::bigint{scale})"
        if _debit_checked(leg):
            owner = "user_id IS NULL" if leg.user_id is None else f"user_id = %({p}user)s"
            ctes.append(
                f"{name} AS (UPDATE {accounts} SET balance = balance + {amount} "
                f"WHERE kind = %({p}kind)s AND {owner} AND balance >= -{amount} "
                f"AND EXISTS (SELECT FROM {previous}) RETURNING id, {amount} AS amount)"
            )
        else:
            # A wallet is unique by user, a platform account by kind.
            arbiter = "(user_id)" if leg.user_id is not None else "(kind) WHERE kind <> 'wallet'"
            ctes.append(
                f"{name} AS (INSERT INTO {accounts} (kind, user_id, balance, created_at) "
                f"SELECT %({p}kind)s, %({p}user)s::bigint, {amount}, %(mv_now)s "
                f"WHERE EXISTS (SELECT FROM {previous}) "
                f"ON CONFLICT {arbiter} DO UPDATE SET balance = {accounts}.balance + "
                f"EXCLUDED.balance RETURNING id, {amount} AS amount)"
            )
        previous = name
    moved = " UNION ALL ".join(f"SELECT id, amount FROM leg{i}" for i in range(len(legs)))
    ctes.append(
        f"entries AS (INSERT INTO {entries} (transaction_id, account_id, amount, created_at) "
        f"SELECT tx.id, moved.id, moved.amount, %(mv_now)s FROM tx, ({moved}) AS moved "
        "RETURNING 1)"
    )
    return Movement(",\n".join(ctes), params, reference, legs, row)


def _transfer_in_one_statement(reference: str, kind: str, memo: str, legs: list[Leg]) -> int:
    movement = _movement(kind=kind, legs=legs, reference=reference, memo=memo)
    return movement.run(movement.statement(), movement.params)[0]


# Balances are bigints. Every rupiah in the ledger came from the external source, whose
# balance is minus all of them; every other balance is zero or more. So while the external
# source stays within the bigint, no balance can leave it, whatever moves afterwards.
MAX_MONEY = 2**63 - 1
_NUMERIC_VALUE_OUT_OF_RANGE = "22003"


def topup(*, user: User, amount: int, note: str = "", reference: str | None = None) -> int:
    """Credit a wallet from the external source; returns the new balance."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise errors.InvalidRequest("A top-up amount must be a positive whole number of rupiah.")
    try:
        with transaction.atomic():
            external = LedgerAccount.objects.filter(kind=Kind.EXTERNAL, user__isnull=True)
            if amount > MAX_MONEY + (external.values_list("balance", flat=True).first() or 0):
                raise _past_max_money(amount)
            transfer(
                reference=reference or f"topup:{uuid.uuid4()}",
                kind=TxKind.TOPUP,
                legs=[Leg.wallet(user, amount), Leg(Kind.EXTERNAL, -amount)],
                memo=note[:255],
            )
    except DataError as exc:
        # Two top-ups at once can both pass the check above; PostgreSQL refuses the
        # second's overflow (SQLite runs one writer at a time, so the check is exact there).
        if getattr(exc.__cause__, "sqlstate", None) == _NUMERIC_VALUE_OUT_OF_RANGE:
            raise _past_max_money(amount) from None
        raise
    return wallet_balance(user)


def _past_max_money(amount: int) -> errors.InvalidRequest:
    return errors.InvalidRequest(
        f"The ledger holds at most {MAX_MONEY} rupiah in all: a top-up of {amount} would pass it."
    )


def hold_legs(buyer: User | int, amount: int) -> list[Leg]:
    return [Leg.wallet(buyer, -amount), Leg(Kind.ESCROW, amount)]


def release_legs(buyer: User | int, amount: int) -> list[Leg]:
    return [Leg(Kind.ESCROW, -amount), Leg.wallet(buyer, amount)]


def hold(*, reference: str, buyer: User | int, amount: int) -> None:
    """Buyer to escrow: the price of a new order."""
    transfer(reference=reference, kind=TxKind.HOLD, legs=hold_legs(buyer, amount))


def reseller_share(amount: int) -> int:
    """RESELLER_SHARE_PERCENT of the amount, rounded down; the platform keeps the rest."""
    return amount * settings.RESELLER_SHARE_PERCENT // 100


def capture(*, reference: str, reseller: User | int, amount: int) -> int:
    """Escrow to the reseller's share and the rest to platform revenue.
    Returns the reseller's share."""
    share = reseller_share(amount)
    legs = [Leg(Kind.ESCROW, -amount)]
    if share:
        legs.append(Leg.wallet(reseller, share))
    if amount - share:
        legs.append(Leg(Kind.REVENUE, amount - share))
    transfer(reference=reference, kind=TxKind.CAPTURE, legs=legs)
    return share


def release(*, reference: str, buyer: User | int, amount: int) -> None:
    """Escrow back to the buyer: a cancelled or expired order."""
    transfer(reference=reference, kind=TxKind.RELEASE, legs=release_legs(buyer, amount))


def ledger_differences() -> list[str]:
    """Every way the ledger disagrees with itself: balances that differ from the sum of
    their entries, and transactions whose entries do not sum to zero. Empty when sound."""
    problems: list[str] = []
    sums = dict(
        LedgerEntry.objects.values("account")
        .annotate(total=Sum("amount"))
        .values_list("account", "total")
    )
    for account in LedgerAccount.objects.all():
        expected = sums.get(account.pk, 0)
        if account.balance != expected:
            problems.append(f"{account} balance {account.balance} != entries {expected}")
    unbalanced: Iterable[tuple[str, int]] = (
        LedgerTransaction.objects.annotate(total=Sum("entries__amount"))
        .exclude(total=0)
        .values_list("reference", "total")
    )
    problems += [f"transaction {ref} sums to {total}" for ref, total in unbalanced]
    return problems + _money_in_and_out_differences()


def _money_in_and_out_differences() -> list[str]:
    """payouts-pending holds exactly the waiting withdrawals, and a top-up is credited
    (`topup:<id>`) exactly when it is paid."""
    problems = []
    payouts = platform_balance(Kind.PAYOUTS_PENDING)
    waiting = (
        Withdrawal.objects.filter(status=Withdrawal.Status.PENDING).aggregate(total=Sum("amount"))[
            "total"
        ]
        or 0
    )
    if payouts != waiting:
        problems.append(f"payouts-pending holds {payouts} but waiting withdrawals sum to {waiting}")
    paid = set(TopUp.objects.filter(status=TopUp.Status.PAID).values_list("pk", flat=True))
    credited = {
        int(number)
        for reference in LedgerTransaction.objects.filter(
            kind=TxKind.TOPUP, reference__startswith="topup:"
        ).values_list("reference", flat=True)
        if (number := reference.removeprefix("topup:")).isdigit()
    }
    problems += [f"top-up {pk} is paid but not credited" for pk in sorted(paid - credited)]
    problems += [f"top-up {pk} is credited but not paid" for pk in sorted(credited - paid)]
    return problems
