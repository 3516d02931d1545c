"""The schedule that sends callbacks a stopped worker or a lost queue message left due."""

from django.db import migrations

SCHEDULE = "orders: send due callbacks"


def create_schedule(apps: object, schema_editor: object) -> None:
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=SCHEDULE,
        defaults={
            "func": "orders.tasks.sweep_callbacks",
            "schedule_type": "I",
            "minutes": 1,
            "repeats": -1,
        },
    )


def remove_schedule(apps: object, schema_editor: object) -> None:
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE).delete()


class Migration(migrations.Migration):
    dependencies = [("orders", "0003_callbacks")]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
