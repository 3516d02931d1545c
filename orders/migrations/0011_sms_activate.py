import django.core.validators
from django.db import migrations, models

from orders.catalogue import SERVICE_CODES


def give_service_codes(apps, schema_editor):
    """The demo applications already loaded get their codes, as seed_demo now gives them."""
    Application = apps.get_model("orders", "Application")
    taken = set(
        Application.objects.exclude(service_code=None).values_list("service_code", flat=True)
    )
    for app in Application.objects.filter(code__in=SERVICE_CODES, service_code=None):
        if SERVICE_CODES[app.code] not in taken:
            app.service_code = SERVICE_CODES[app.code]
            app.save(update_fields=["service_code"])


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0010_a_number_serves_an_application_once"),
    ]

    operations = [
        migrations.AddField(
            model_name="application",
            name="service_code",
            field=models.CharField(
                blank=True,
                help_text="The sms-activate protocol's short code for this service (wa, tg, go, ...), which existing bots send; docs/SMS-ACTIVATE.md lists them. Blank: reachable there by its code above only.",
                max_length=16,
                null=True,
                unique=True,
                validators=[
                    django.core.validators.RegexValidator(
                        "^[a-z0-9]+$", "Lower-case letters and digits only."
                    )
                ],
            ),
        ),
        migrations.AddField(
            model_name="order",
            name="another_sms_after",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(give_service_codes, migrations.RunPython.noop, elidable=True),
    ]
