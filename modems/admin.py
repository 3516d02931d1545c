from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from modems.carriers import carrier_of
from modems.models import InboundSms, Modem


@admin.register(Modem)
class ModemAdmin(admin.ModelAdmin):
    list_display = (
        "uid",
        "phone_number",
        "reseller",
        "provider",
        "carrier",
        "mapping",
        "signal",
        "can_order",
        "online",
        "disabled",
        "last_heartbeat_at",
    )
    list_filter = ("mapping", "disabled", "can_order", "carrier")
    search_fields = ("uid", "phone_number", "reseller__email")
    list_select_related = ("reseller",)
    readonly_fields = ("created_at", "updated_at", "last_heartbeat_at")
    actions = ["disable", "enable"]

    def save_model(self, request: HttpRequest, modem: Modem, form: Any, change: bool) -> None:
        modem.carrier = carrier_of(modem.provider)  # as the agent's sync names it
        super().save_model(request, modem, form, change)

    @admin.display(boolean=True)
    def online(self, modem: Modem) -> bool:
        return modem.is_online

    @admin.action(description=_("Disable the selected modems (never handed out)"))
    def disable(self, request: HttpRequest, queryset: QuerySet[Modem]) -> None:
        count = queryset.update(disabled=True)
        self.message_user(request, gettext("Disabled %(count)s modems.") % {"count": count})

    @admin.action(description=_("Enable the selected modems"))
    def enable(self, request: HttpRequest, queryset: QuerySet[Modem]) -> None:
        count = queryset.update(disabled=False)
        self.message_user(request, gettext("Enabled %(count)s modems.") % {"count": count})


@admin.register(InboundSms)
class InboundSmsAdmin(admin.ModelAdmin):
    list_display = ("created_at", "modem", "sender", "short_text", "otp_code", "matched_order")
    list_filter = (("otp_code", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("sender", "text", "phone_number", "modem__uid", "message_id")
    list_select_related = ("modem",)
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return [f.name for f in InboundSms._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=_("text"))
    def short_text(self, sms: InboundSms) -> str:
        return sms.text[:80]

    @admin.display(description=_("order"))
    def matched_order(self, sms: InboundSms) -> int | None:
        match = getattr(sms, "match", None)
        return match.order_id if match else None

    def get_queryset(self, request: HttpRequest) -> QuerySet[InboundSms]:
        return super().get_queryset(request).select_related("match")
