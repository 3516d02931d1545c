"""A modem's mobile carrier, as the sms-activate protocol names carriers, read from the
operator name its agent reports (AT+COPS) and kept up to date by the sync."""

import pytest
from rest_framework.test import APIClient

from modems.carriers import carrier_of
from modems.models import Modem
from tests.factories import Agent


@pytest.mark.parametrize(
    ("provider", "carrier"),
    [
        ("TELKOMSEL", "telkomsel"),
        ("IND TELKOMSEL", "telkomsel"),
        ("T-Sel", "telkomsel"),
        ("INDOSAT OOREDOO HUTCHISON", "indosat"),  # Hutchison is also 3's owner
        ("IM3 Ooredoo", "indosat"),
        ("3", "three"),
        ("TRI", "three"),
        ("XL Axiata", "xl"),
        ("AXIS", "axis"),
        ("by.U", "byu"),
        ("SMARTFREN", "smartfren"),
        ("Smartfren4G", "smartfren"),
        ("Some Net 2", "somenet2"),  # unknown: its own name, in the same form
        ("", ""),
        ("  ", ""),
    ],
)
def test_carrier_of_the_operator_name(provider: str, carrier: str) -> None:
    assert carrier_of(provider) == carrier


def test_the_sync_keeps_the_carrier_with_the_provider(client: APIClient, agent: Agent) -> None:
    def sync(provider: str) -> Modem:
        body = {"modems": [{"uid": "COM1", "phone_number": "6281100000001", "provider": provider}]}
        response = client.post("/api/modem/sync", body, format="json", **agent.headers)
        assert response.status_code == 200, response.json()
        return Modem.objects.get(reseller=agent.user, uid="COM1")

    assert sync("TELKOMSEL").carrier == "telkomsel"
    assert sync("INDOSAT OOREDOO").carrier == "indosat"
    assert sync("").carrier == ""
