from django.db import migrations, models

from modems.carriers import carrier_of


def name_carriers(apps, schema_editor):
    Modem = apps.get_model("modems", "Modem")
    modems = list(Modem.objects.exclude(provider="").only("id", "provider"))
    for modem in modems:
        modem.carrier = carrier_of(modem.provider)
    Modem.objects.bulk_update(modems, ["carrier"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("modems", "0003_sms_modem_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="modem",
            name="carrier",
            field=models.CharField(
                blank=True,
                default="",
                editable=False,
                help_text="The provider as the sms-activate protocol names carriers (telkomsel, ...).",
                max_length=32,
            ),
        ),
        migrations.RunPython(name_carriers, migrations.RunPython.noop, elidable=True),
    ]
