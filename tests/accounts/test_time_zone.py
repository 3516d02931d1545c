"""The buyer's time zone (issue 18, part B): kept on the account, activated per request,
named next to every time the pages show."""

from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders.templatetags.dashboard_tags import when
from tests.factories import Buyer

MOMENT = datetime(2026, 12, 1, 7, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "shown"),
    [
        ("Asia/Jakarta", "01 Dec 2026 14:05 WIB"),
        ("Asia/Jayapura", "01 Dec 2026 16:05 WIT"),
        ("Europe/Paris", "01 Dec 2026 08:05 CET"),
        ("Asia/Dubai", "01 Dec 2026 11:05 UTC+04"),  # no letters in the zone database
    ],
)
def test_a_time_shows_in_the_active_zone_with_its_name(zone: str, shown: str) -> None:
    with timezone.override(zone):
        html = when(MOMENT)
    assert f">{shown}</time>" in html
    assert 'datetime="2026-12-01T07:05:00Z"' in html


@pytest.mark.django_db
def test_a_new_account_is_on_jakarta_time_and_can_change_it(buyer: Buyer) -> None:
    client = Client()
    client.force_login(buyer.user)
    page = client.get(reverse("account-time-zone"))
    assert page.context["form"]["time_zone"].value() == "Asia/Jakarta"
    assert "WIB" in page.content.decode()  # the header names the zone

    refused = client.post(reverse("account-time-zone"), {"time_zone": "Mars/Olympus"})
    assert refused.status_code == 200 and refused.context["form"].errors["time_zone"]
    buyer.user.refresh_from_db()
    assert buyer.user.time_zone == "Asia/Jakarta"

    saved = client.post(reverse("account-time-zone"), {"time_zone": "Asia/Makassar"})
    assert saved.status_code == 302
    buyer.user.refresh_from_db()
    assert buyer.user.time_zone == "Asia/Makassar"
    assert "WITA" in client.get(reverse("dashboard")).content.decode()
