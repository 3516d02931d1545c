"""Numbers rest from an application they keep failing (orders/statements/free_modems.py,
`REST`): the flag the stock follows and the index of the resting ones. Then the kept
counts' triggers are (re)installed from the rule as it is now, and everything is counted
from scratch."""

from django.db import migrations, models

from orders.statements import deliverability, stock_counts


def install(apps: object, schema_editor: object) -> None:
    deliverability.install(schema_editor)  # type: ignore[arg-type]
    stock_counts.install(schema_editor)  # type: ignore[arg-type]


def uninstall(apps: object, schema_editor: object) -> None:
    stock_counts.uninstall(schema_editor)  # type: ignore[arg-type]
    deliverability.uninstall(schema_editor)  # type: ignore[arg-type]


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0013_delivery_counts"),
    ]

    operations = [
        migrations.AddField(
            model_name="numberrecord",
            name="resting",
            field=models.BooleanField(db_default=False),
        ),
        migrations.AddIndex(
            model_name="numberrecord",
            index=models.Index(
                condition=models.Q(("resting", True)),
                fields=["id"],
                name="orders_number_resting_idx",
            ),
        ),
        migrations.RunPython(install, uninstall),
    ]
