"""Heartbeats update in place: last_heartbeat_at leaves the orderable index, and the
modem table keeps 30% of each page free (PostgreSQL), so that a heartbeat's new row
versions fit beside the old ones and no index entry is written (HOT updates)."""

from django.db import migrations, models

from zerotp.storage import fillfactor



class Migration(migrations.Migration):
    dependencies = [
        ("modems", "0001_initial"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="modem",
            name="modems_orderable_idx",
        ),
        migrations.AddIndex(
            model_name="modem",
            index=models.Index(
                condition=models.Q(("can_order", True), ("disabled", False), ("phone_number__isnull", False)),
                fields=["mapping", "id"],
                name="modems_orderable_idx",
            ),
        ),
        fillfactor("modems_modem", 70),
    ]
