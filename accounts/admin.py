from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.forms import AdminLoginForm
from accounts.models import ApiKey, User

# The admin's login counts failures like the site's (LOGIN_FAILURES_MAX per window).
admin.site.login_form = AdminLoginForm


class MaskedKey:
    """The key's column: its prefix and last four characters, under a translated header."""

    @admin.display(description=_("key"))
    def masked(self, key: ApiKey) -> str:
        return key.masked


class ApiKeyInline(MaskedKey, admin.TabularInline):
    model = ApiKey
    extra = 0
    can_delete = False
    fields = ("kind", "masked", "created_at", "revoked_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("-date_joined",)
    list_display = ("email", "is_reseller", "is_staff", "is_active", "date_joined")
    list_filter = ("is_reseller", "is_staff", "is_active")
    search_fields = ("email",)
    readonly_fields = ("date_joined", "last_login", "callback_secret")
    inlines = [ApiKeyInline]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Roles"), {"fields": ("is_active", "is_reseller", "is_staff", "is_superuser")}),
        (_("API & Callback"), {"fields": ("callback_url", "callback_enabled", "callback_secret")}),
        (_("Dates"), {"fields": ("date_joined", "last_login")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


@admin.register(ApiKey)
class ApiKeyAdmin(MaskedKey, admin.ModelAdmin):
    list_display = ("masked", "user", "kind", "created_at", "revoked_at")
    list_filter = ("kind", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("user__email", "prefix", "last4")
    readonly_fields = ("user", "kind", "prefix", "last4", "digest", "created_at")
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are issued by the account services, shown once

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        from django.utils import timezone

        queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
