from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from orders.callbacks import callback_resend
from orders.models import (
    Application,
    ApplicationPrice,
    CallbackAttempt,
    CallbackDelivery,
    IdempotencyKey,
    Order,
    OrderMessage,
)
from zerotp.errors import DomainError


class ApplicationPriceInline(admin.TabularInline):
    model = ApplicationPrice
    extra = 0


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "service_code", "enabled", "prices_display")
    list_filter = ("enabled",)
    search_fields = ("name", "code", "service_code")
    inlines = [ApplicationPriceInline]
    actions = ["disable", "enable"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Application]:
        return super().get_queryset(request).prefetch_related("prices")

    @admin.display(description=_("prices"))
    def prices_display(self, app: Application) -> str:
        return ", ".join(f"{p.operator} {p.price}" for p in app.prices.all())

    @admin.action(description=_("Disable the selected applications"))
    def disable(self, request: HttpRequest, queryset: QuerySet[Application]) -> None:
        count = queryset.update(enabled=False)
        self.message_user(request, gettext("Disabled %(count)s applications.") % {"count": count})

    @admin.action(description=_("Enable the selected applications"))
    def enable(self, request: HttpRequest, queryset: QuerySet[Application]) -> None:
        count = queryset.update(enabled=True)
        self.message_user(request, gettext("Enabled %(count)s applications.") % {"count": count})


class OrderMessageInline(admin.TabularInline):
    model = OrderMessage
    extra = 0
    fields = ("sms", "otp_code", "created_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Orders change state only through the order services (money moves with them)."""

    list_display = (
        "id",
        "buyer",
        "application",
        "operator",
        "phone_number",
        "price",
        "status",
        "otp_code",
        "created_at",
        "expires_at",
    )
    list_filter = ("status", "operator", "application")
    search_fields = ("=id", "buyer__email", "phone_number", "custom_user_id", "otp_code")
    list_select_related = ("buyer", "application")
    date_hierarchy = "created_at"
    inlines = [OrderMessageInline]

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return [f.name for f in Order._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(admin.ModelAdmin):
    list_display = ("key", "buyer", "created_at")
    search_fields = ("key", "buyer__email")
    readonly_fields = ("buyer", "key", "fingerprint", "response", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class CallbackAttemptInline(admin.TabularInline):
    model = CallbackAttempt
    extra = 0
    can_delete = False
    fields = ("at", "url", "status_code", "error", "duration_ms", "response_body")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(CallbackDelivery)
class CallbackDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "buyer",
        "order",
        "event",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status", "event")
    search_fields = ("=id", "webhook_id", "buyer__email", "=order__id")
    list_select_related = ("buyer",)
    date_hierarchy = "created_at"
    inlines = [CallbackAttemptInline]
    actions = ["resend"]

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return [f.name for f in CallbackDelivery._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Send the selected deliveries again now"))
    def resend(self, request: HttpRequest, queryset: QuerySet[CallbackDelivery]) -> None:
        sent = 0
        for delivery in queryset.select_related("buyer"):
            try:
                callback_resend(buyer=delivery.buyer, delivery_id=delivery.pk)
                sent += 1
            except DomainError as exc:
                self.message_user(request, f"{delivery.webhook_id}: {exc.message}", "warning")
        self.message_user(request, gettext("Queued %(count)s deliveries.") % {"count": sent})
