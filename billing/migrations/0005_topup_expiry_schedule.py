"""The job queue's schedule that marks pending top-ups past their time expired (created
idempotently by name, like the orders' expiry)."""

from django.db import migrations

SCHEDULE = "billing: expire unpaid top-ups"


def create_schedule(apps: object, schema_editor: object) -> None:
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name=SCHEDULE,
        defaults={
            "func": "billing.tasks.expire_topups",
            "schedule_type": "I",
            "minutes": 10,
            "repeats": -1,
        },
    )


def remove_schedule(apps: object, schema_editor: object) -> None:
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_topups_and_withdrawals"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
