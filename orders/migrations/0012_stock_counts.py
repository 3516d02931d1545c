"""The catalogue's stock as counts kept by triggers (orders/statements/stock_counts.py),
filled from the modems and orders as they are."""

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
        ("carrier", models.CharField(blank=True, max_length=32)),
    ]


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0011_sms_activate"),
        ("modems", "0005_online"),
    ]

    operations = [
        migrations.CreateModel(
            name="StockCount",
            fields=[*key(), ("modems", models.IntegerField(default=0))],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("application_id", "operator", "carrier"),
                        name="orders_stock_count_key",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="StockCountChange",
            fields=[*key(), ("modems", models.IntegerField())],
        ),
        # The triggers are installed, and the counts counted, by 0014_number_rest: they
        # are rendered from the rule as it is now, which reads a table made after this.
    ]
