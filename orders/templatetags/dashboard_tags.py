"""Small presentation helpers for the dashboard templates: translated labels for the
models' choices, times in the reader's zone with its label, and page links."""

from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from orders.representation import iso

register = template.Library()

STATUS_LABELS = {
    "pending": _("Waiting for SMS"),
    "completed": _("Code received"),
    "finished": _("Finished"),
    "cancelled": _("Cancelled"),
    "expired": _("Expired"),
}
OPERATOR_LABELS = {"normal": _("Normal"), "promo": _("Promo"), "special": _("Special")}
DELIVERY_LABELS = {"pending": _("Pending"), "delivered": _("Delivered"), "failed": _("Failed")}


@register.filter
def status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


@register.filter
def operator_label(operator: str) -> str:
    return str(OPERATOR_LABELS.get(operator, operator))


@register.filter
def delivery_label(status: str) -> str:
    return str(DELIVERY_LABELS.get(status, status))


@register.filter(name="iso")
def iso_filter(moment: datetime | None) -> str:
    """ISO 8601 in UTC with a Z, as the API writes times (for data attributes)."""
    return iso(moment) or ""


def zone_label(moment: datetime | None = None) -> str:
    """The active zone's short name at that moment ("WIB", "CET"), or its offset from UTC
    where the zone database has no letters for it ("UTC+04")."""
    local = timezone.localtime(moment)
    name = local.tzname() or ""
    return name if name.isalpha() else f"UTC{name}"


@register.simple_tag
def when(moment: datetime | None, style: str = "datetime") -> str:
    """A <time> in the zone accounts.middleware activated (the reader's), labelled: "06 Dec
    2026 14:05 WIB". The title names the zone in full."""
    if moment is None:
        return "–"
    local = timezone.localtime(moment)
    shown = local.strftime("%d %b %Y %H:%M" if style == "datetime" else "%H:%M:%S")
    return format_html(
        '<time datetime="{}" title="{}">{} {}</time>',
        iso(moment),
        timezone.get_current_timezone_name(),
        shown,
        zone_label(moment),
    )


@register.simple_tag
def current_zone() -> str:
    """The header's label of the reader's zone: "WIB"."""
    return zone_label()


@register.simple_tag
def page_numbers(page: Any) -> list[int | None]:
    """Page links around the current one, None for a gap: 1 … 4 5 6 … 12."""
    total = page.paginator.num_pages
    wanted = {1, total, page.number - 1, page.number, page.number + 1}
    numbers: list[int | None] = []
    for n in sorted(n for n in wanted if 1 <= n <= total):
        if numbers and numbers[-1] is not None and n - numbers[-1] > 1:
            numbers.append(None)
        numbers.append(n)
    return numbers


@register.simple_tag(takes_context=True)
def query_with(context: template.Context, **changes: Any) -> str:
    """The current query string with some parameters changed (for page and filter links)."""
    query = context["request"].GET.copy()
    for name, value in changes.items():
        if value in (None, ""):
            query.pop(name, None)
        else:
            query[name] = value
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"
