from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ModemsConfig(AppConfig):
    name = "modems"
    verbose_name = _("Modems")
