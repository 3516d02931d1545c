"""How often and how fast codes arrive, kept per hour by a trigger
(orders/statements/deliverability.py), counted from the orders decided so far."""

from django.db import migrations, models

from orders.statements import deliverability

OPERATORS = [("normal", "Normal"), ("promo", "Promo"), ("special", "Special")]


def install(apps: object, schema_editor: object) -> None:
    deliverability.install(schema_editor)  # type: ignore[arg-type]


def uninstall(apps: object, schema_editor: object) -> None:
    deliverability.uninstall(schema_editor)  # type: ignore[arg-type]


def key() -> list[tuple[str, models.Field]]:
    return [
        (
            "id",
            models.BigAutoField(
                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
            ),
        ),
        ("application_id", models.PositiveIntegerField()),
        ("operator", models.CharField(choices=OPERATORS, max_length=8)),
        ("hour", models.DateTimeField()),
        ("bucket", models.SmallIntegerField()),
    ]


class Migration(migrations.Migration):
    dependencies = [("orders", "0012_stock_counts")]

    operations = [
        migrations.CreateModel(
            name="DeliveryCount",
            fields=[*key(), ("orders", models.IntegerField(default=0))],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("hour", "application_id", "operator", "bucket"),
                        name="orders_delivery_count_key",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="DeliveryCountChange",
            fields=[*key(), ("orders", models.IntegerField())],
        ),
        migrations.RunPython(install, uninstall),
    ]
