"""How often and how fast codes arrive, kept per hour by a trigger
(orders/statements/deliverability.py), and each number's record per application, counted
from the orders decided so far."""

from django.db import migrations, models

OPERATORS = [("normal", "Normal"), ("promo", "Promo"), ("special", "Special")]



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
        migrations.CreateModel(
            name="NumberRecord",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("phone_number", models.CharField(max_length=15)),
                ("application_id", models.PositiveIntegerField()),
                ("delivered", models.IntegerField(default=0)),
                ("failed", models.IntegerField(default=0)),
                ("failed_in_a_row", models.IntegerField(default=0)),
                ("last_failed_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("phone_number", "application_id"),
                        name="orders_number_record_key",
                    )
                ],
            },
        ),
        # The triggers are installed, and the counts counted, by 0014_number_rest: they
        # are rendered from the rule as it is now, which reads a table made after this.
    ]
