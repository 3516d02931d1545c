"""The job queue's schedule that expires and refunds orders past `expires_at`.

Created idempotently by name; `catch_up` is off in Q_CLUSTER, so a worker that was down
runs it once, not once per missed minute."""

from django.db import migrations

SCHEDULE = "orders: expire and refund pending orders"


def create_schedule(apps: object, schema_editor: object) -> None:
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name=SCHEDULE,
        defaults={
            "func": "orders.tasks.expire_orders",
            "schedule_type": "I",
            "minutes": 1,
            "repeats": -1,
        },
    )


def remove_schedule(apps: object, schema_editor: object) -> None:
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
