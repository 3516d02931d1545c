"""Balances update in place. Every order moves money through the escrow account's row
and a wallet's; with room left on each page (PostgreSQL), the new row version goes beside
the old one and no index entry is written (HOT updates). The entry table loses the index
its unique (transaction, account) constraint already provides."""

import django.db.models.deletion
from django.db import migrations, models

from zerotp.storage import fillfactor



class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="ledgerentry",
            name="transaction",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="entries",
                to="billing.ledgertransaction",
            ),
        ),
        fillfactor("billing_ledgeraccount", 50),
    ]
