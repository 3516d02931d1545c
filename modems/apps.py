from django.apps import AppConfig


class ModemsConfig(AppConfig):
    name = "modems"
    verbose_name = "Modems"
