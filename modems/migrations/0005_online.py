"""`Modem.online`: set by heartbeats, cleared by a job-queue schedule a minute after they
stop; the orderable index keeps to online modems, so the order pick never walks silent
ones. Existing modems start as their last heartbeat says."""

from datetime import timedelta

from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

SCHEDULE = "modems: mark silent modems offline"


def mark_online(apps: object, schema_editor: object) -> None:
    since = timezone.now() - timedelta(seconds=settings.MODEM_ONLINE_SECONDS)
    Modem = apps.get_model("modems", "Modem")
    Modem.objects.filter(last_heartbeat_at__gte=since).update(online=True)


def create_schedule(apps: object, schema_editor: object) -> None:
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=SCHEDULE,
        defaults={
            "func": "modems.tasks.mark_offline",
            "schedule_type": "I",
            "minutes": 1,
            "repeats": -1,
        },
    )


def remove_schedule(apps: object, schema_editor: object) -> None:
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("modems", "0004_modem_carrier"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.AddField(
            model_name="modem",
            name="online",
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.RunPython(mark_online, migrations.RunPython.noop),
        migrations.RemoveIndex(model_name="modem", name="modems_orderable_idx"),
        migrations.AddIndex(
            model_name="modem",
            index=models.Index(
                condition=models.Q(
                    online=True, can_order=True, disabled=False, phone_number__isnull=False
                ),
                fields=["mapping", "id"],
                name="modems_orderable_idx",
            ),
        ),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
