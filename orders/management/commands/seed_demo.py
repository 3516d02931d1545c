"""`manage.py seed_demo`: the demo catalogue (idempotent). WhatsApp is created first and
Telegram second, so on a fresh database the seed's `"application_id": 1` is WhatsApp.
It creates no modems: stock comes only from agents."""

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from orders.catalogue import DEMO_APPLICATIONS, SERVICE_CODES
from orders.models import Application, ApplicationPrice


class Command(BaseCommand):
    help = "Load the demo catalogue of real-world applications, prices and sender patterns."

    def handle(self, *args: Any, **options: Any) -> None:
        created = 0
        with transaction.atomic():
            for demo in DEMO_APPLICATIONS:
                app, new = Application.objects.update_or_create(
                    code=demo.code,
                    defaults={
                        "name": demo.name,
                        "sender_patterns": "\n".join(demo.sender_patterns),
                        "service_code": SERVICE_CODES.get(demo.code),
                    },
                )
                created += new
                for operator, price in demo.prices.items():
                    ApplicationPrice.objects.update_or_create(
                        application=app, operator=operator, defaults={"price": price}
                    )
        self.stdout.write(f"Demo catalogue: {len(DEMO_APPLICATIONS)} applications ({created} new).")
