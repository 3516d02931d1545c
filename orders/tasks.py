"""Job-queue tasks: thin and safe to run twice."""

from orders.callbacks import callback_send, callbacks_due
from orders.models import JobRun
from orders.services import job_run_record, numbers_rest, orders_expire
from orders.statements import deliverability, stock_counts


def expire_orders() -> int:
    """Expire and refund every pending order past its time (scheduled every minute), write
    which numbers rest (the expiry is where most failures come from), drop deliverability
    counts no window reads, fold the stock's changes (a site nobody reads would keep a row
    per order until the next read), then note the clean run: /readyz fails when the last
    one is too old."""
    expired = orders_expire()
    numbers_rest()
    deliverability.prune()
    stock_counts.KEPT.fold()
    job_run_record(name=JobRun.Job.EXPIRY_SWEEP)
    return expired


def send_callback(delivery_id: int) -> bool:
    """Send one callback delivery if it is due and unclaimed (queued after commit)."""
    return callback_send(delivery_id=delivery_id)


def sweep_callbacks() -> int:
    """Queue every due callback that no worker holds (scheduled every minute): catches
    what a stopped worker or a lost queue message left behind."""
    from django_q.tasks import async_task

    due = callbacks_due()
    for delivery_id in due:
        async_task("orders.tasks.send_callback", delivery_id)
    return len(due)
