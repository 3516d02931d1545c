from typing import Any

from django.apps import AppConfig
from django.db import connections, transaction
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _recount_stock_after_flush(using: str, plan: Any = None, **kwargs: Any) -> None:
    """`flush` (and every test that resets the database) empties the tables one by one in
    no set order, and each DELETE of modems or orders fires the stock's triggers against
    counts that may already be empty; it then sends post_migrate without a plan. `migrate`
    sends one with its plan, and the counts' own migration counts from scratch."""
    if plan is not None:
        return
    from orders.statements.stock_counts import recount

    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        for statement in recount():
            cursor.execute(statement)


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = _("Orders")

    def ready(self) -> None:
        post_migrate.connect(_recount_stock_after_flush, sender=self)
