"""The command-line tools (docs/API.md, "Accounts from the command line"): create_account,
topup, seed_demo and demo_accounts.

Most tests run the commands in-process with call_command against the test database. The
exit codes are checked by running manage.py in a subprocess against a throwaway SQLite
file, never against the project's real database."""

import json
import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from accounts.models import User
from billing.models import LedgerEntry, LedgerTransaction
from billing.services import wallet_balance
from modems.models import Modem
from orders.catalogue import DEMO_APPLICATIONS, SERVICE_CODES
from orders.models import Application, ApplicationPrice
from tests.factories import Buyer, make_buyer

BALANCE = "/api/v1/balance"
HEARTBEAT = "/api/modem/heartbeat"
JSON_KEYS = {"email", "api_key", "agent_key", "callback_secret"}


def run(*args: str) -> str:
    """call_command, answering what the command printed on stdout."""
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def create_account_json(*args: str) -> dict:
    output = run("create_account", *args, "--json")
    assert output.strip().count("\n") == 0, f"more than one line on stdout: {output!r}"
    return json.loads(output)


def balance_with(client: APIClient, api_key: str) -> int:
    response = client.get(BALANCE, HTTP_X_API_KEY=api_key)
    assert response.status_code == 200, response.content
    return response.json()["balance"]


def heartbeat_status(client: APIClient, agent_key: str) -> int:
    return client.post(
        HEARTBEAT, {"modems": []}, format="json", HTTP_X_AGENT_KEY=agent_key
    ).status_code


def topups_of(user: User) -> list[LedgerTransaction]:
    return list(
        LedgerTransaction.objects.filter(
            kind=LedgerTransaction.Kind.TOPUP, entries__account__user=user
        ).order_by("id")
    )


def credited(tx: LedgerTransaction, user: User) -> int:
    return LedgerEntry.objects.get(transaction=tx, account__user=user).amount


# --- create_account --------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_account_json_prints_one_object_with_working_keys(client):
    data = create_account_json("new@example.com")

    assert set(data) == JSON_KEYS
    assert data["email"] == "new@example.com"
    assert data["api_key"].startswith("ztp_live_")
    assert data["agent_key"] is None
    user = User.objects.get(email="new@example.com")
    assert data["callback_secret"] == user.callback_secret
    assert data["callback_secret"].startswith("whsec_")
    assert balance_with(client, data["api_key"]) == 0
    assert user.is_reseller is False
    assert user.is_staff is False


@pytest.mark.django_db
def test_create_account_without_json_prints_readable_lines_with_the_key(client):
    output = run("create_account", "plain@example.com")

    assert not output.lstrip().startswith("{")
    keys = re.findall(r"ztp_live_\S+", output)
    assert len(keys) == 1
    assert balance_with(client, keys[0]) == 0
    assert "ztp_agent_" not in output


@pytest.mark.django_db
def test_create_account_with_a_balance_tops_it_up_through_the_ledger(client):
    data = create_account_json("rich@example.com", "--balance", "5000")

    assert balance_with(client, data["api_key"]) == 5000
    user = User.objects.get(email="rich@example.com")
    assert wallet_balance(user) == 5000
    [topup] = topups_of(user)
    assert credited(topup, user) == 5000


@pytest.mark.django_db
def test_create_account_without_a_balance_books_nothing():
    create_account_json("poor@example.com")

    assert topups_of(User.objects.get(email="poor@example.com")) == []


@pytest.mark.django_db
def test_create_account_reseller_gets_a_working_agent_key(client):
    data = create_account_json("seller@example.com", "--reseller")

    assert data["agent_key"].startswith("ztp_agent_")
    assert heartbeat_status(client, data["agent_key"]) == 200
    assert balance_with(client, data["api_key"]) == 0
    assert User.objects.get(email="seller@example.com").is_reseller is True


@pytest.mark.django_db
def test_create_account_without_reseller_has_no_working_agent_key(client):
    data = create_account_json("buyer-only@example.com")

    assert heartbeat_status(client, data["api_key"]) == 401


@pytest.mark.django_db
def test_create_account_staff_sets_is_staff():
    create_account_json("boss@example.com", "--staff")

    assert User.objects.get(email="boss@example.com").is_staff is True


@pytest.mark.django_db
def test_create_account_password_lets_the_account_log_in():
    create_account_json("login@example.com", "--password", "correct horse battery")

    user = User.objects.get(email="login@example.com")
    assert user.check_password("correct horse battery")
    assert not user.check_password("wrong")


@pytest.mark.django_db
@pytest.mark.parametrize("email", ["taken@example.com", "TAKEN@Example.COM", " taken@example.com "])
def test_create_account_for_an_existing_email_fails_with_the_reason(email: str):
    existing = make_buyer(balance=100, email="taken@example.com")

    with pytest.raises(CommandError, match="already exists") as raised:
        run("create_account", email, "--balance", "5000", "--json")

    assert raised.value.returncode == 1
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1
    assert wallet_balance(existing.user) == 100
    assert len(topups_of(existing.user)) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("email", ["not-an-email", "a@", "@example.com", "a b@example.com", ""])
def test_create_account_with_a_bad_email_fails(email: str):
    with pytest.raises(CommandError, match="not a valid email") as raised:
        run("create_account", email, "--json")

    assert raised.value.returncode == 1
    assert not User.objects.exists()


@pytest.mark.django_db
def test_create_account_with_a_negative_balance_fails():
    with pytest.raises(CommandError, match="balance"):
        run("create_account", "minus@example.com", "--balance", "-1")

    assert not User.objects.exists()


@pytest.mark.django_db
def test_create_account_with_a_balance_that_is_not_a_number_exits_1(capsys):
    with pytest.raises(SystemExit) as raised:
        run("create_account", "nan@example.com", "--balance", "lots")

    assert raised.value.code == 1
    assert "--balance" in capsys.readouterr().err
    assert not User.objects.exists()


# --- topup -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_topup_credits_the_balance_and_records_the_note(client, buyer: Buyer):
    output = run("topup", buyer.user.email, "2500", "--note", "x")

    assert "2500" in output
    assert balance_with(client, buyer.key) == 102_500
    latest = topups_of(buyer.user)[-1]
    assert latest.memo == "x"
    assert credited(latest, buyer.user) == 2500
    assert len(topups_of(buyer.user)) == 2


@pytest.mark.django_db
def test_topup_of_an_unknown_email_fails(buyer: Buyer):
    transactions = LedgerTransaction.objects.count()

    with pytest.raises(CommandError, match=re.escape("nobody@example.com")) as raised:
        run("topup", "nobody@example.com", "2500")

    assert raised.value.returncode == 1
    assert LedgerTransaction.objects.count() == transactions
    assert wallet_balance(buyer.user) == 100_000


@pytest.mark.django_db
@pytest.mark.parametrize("amount", ["0", "-5"])
def test_topup_of_zero_or_a_negative_amount_fails(buyer: Buyer, amount: str):
    with pytest.raises(CommandError) as raised:
        run("topup", buyer.user.email, amount)

    assert raised.value.returncode == 1
    assert wallet_balance(buyer.user) == 100_000
    assert len(topups_of(buyer.user)) == 1


@pytest.mark.django_db
def test_topup_with_an_amount_that_is_not_a_number_exits_1(buyer: Buyer, capsys):
    # call_command answers a bad argument with SystemExit(1), as the command line does.
    with pytest.raises(SystemExit) as raised:
        run("topup", buyer.user.email, "notanumber")

    assert raised.value.code == 1
    assert "notanumber" in capsys.readouterr().err
    assert wallet_balance(buyer.user) == 100_000


# --- Exit codes from the real command line ---------------------------------------------------


@pytest.fixture(scope="module")
def manage_py(tmp_path_factory: pytest.TempPathFactory):
    """Run manage.py in a subprocess against a freshly migrated throwaway SQLite file."""
    database = tmp_path_factory.mktemp("cli") / "throwaway.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}"}
    base = Path(settings.BASE_DIR)

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=base,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    migrated = manage("migrate", "--verbosity", "0")
    assert migrated.returncode == 0, migrated.stderr
    return manage


def test_topup_with_a_bad_amount_exits_1_on_the_command_line(manage_py):
    result = manage_py("topup", "a@b.c", "notanumber")

    assert result.returncode == 1
    assert "invalid int value" in result.stderr
    # An argument error stops before the database is asked about the account.
    assert "no account" not in result.stderr
    assert "Traceback" not in result.stderr


def test_create_account_without_an_email_exits_1_on_the_command_line(manage_py):
    result = manage_py("create_account")

    assert result.returncode == 1
    assert "email" in result.stderr
    assert result.stdout == ""


def test_create_account_for_an_existing_email_exits_1_on_the_command_line(manage_py):
    first = manage_py("create_account", "cli@example.com", "--json")
    assert first.returncode == 0, first.stderr
    assert set(json.loads(first.stdout)) == JSON_KEYS

    again = manage_py("create_account", "CLI@example.com", "--json")

    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert again.stdout == ""


def test_create_account_with_a_bad_email_exits_1_on_the_command_line(manage_py):
    result = manage_py("create_account", "not-an-email", "--json")

    assert result.returncode == 1
    assert "not a valid email" in result.stderr
    assert result.stdout == ""


def test_topup_of_an_unknown_email_exits_1_on_the_command_line(manage_py):
    result = manage_py("topup", "ghost@example.com", "100")

    assert result.returncode == 1
    assert "ghost@example.com" in result.stderr


def test_topup_succeeds_with_exit_0_on_the_command_line(manage_py):
    created = manage_py("create_account", "payee@example.com", "--json")
    assert created.returncode == 0, created.stderr

    result = manage_py("topup", "payee@example.com", "2500", "--note", "cash")

    assert result.returncode == 0, result.stderr
    assert "2500" in result.stdout


# --- seed_demo -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_seed_demo_twice_gives_the_same_catalogue():
    run("seed_demo")
    applications = Application.objects.count()
    prices = ApplicationPrice.objects.count()

    run("seed_demo")

    assert applications == len(DEMO_APPLICATIONS)
    assert Application.objects.count() == applications
    assert ApplicationPrice.objects.count() == prices
    assert sorted(Application.objects.values_list("code", flat=True)) == sorted(
        demo.code for demo in DEMO_APPLICATIONS
    )


def test_seed_demo_makes_whatsapp_application_1_and_telegram_2_on_a_fresh_database(
    django_db_reset_sequences,
):
    run("seed_demo")

    assert Application.objects.get(pk=1).name == "WhatsApp"
    assert Application.objects.get(pk=2).name == "Telegram"
    services = {s["id"]: s for s in APIClient().get("/api/v1/services").json()}
    assert services[1]["name"] == "WhatsApp"
    assert services[2]["name"] == "Telegram"


@pytest.mark.django_db
def test_seed_demo_gives_every_application_a_normal_price():
    run("seed_demo")

    for application in Application.objects.all():
        normal = ApplicationPrice.objects.get(application=application, operator="normal")
        assert normal.price > 0
        assert application.enabled is True


@pytest.mark.django_db
def test_seed_demo_creates_no_modems():
    run("seed_demo")
    run("seed_demo")

    assert not Modem.objects.exists()
    services = APIClient().get("/api/v1/services").json()
    assert services
    assert all(service["stock"] == 0 for service in services)


# --- demo_accounts ---------------------------------------------------------------------------


def demo_keys(output: str) -> tuple[str, str]:
    api = re.findall(r"^\s*export API_KEY=(\S+)\s*$", output, re.MULTILINE)
    agent = re.findall(r"^\s*export AGENT_KEY=(\S+)\s*$", output, re.MULTILINE)
    assert len(api) == 1, output
    assert len(agent) == 1, output
    return api[0], agent[0]


@pytest.mark.django_db
def test_demo_accounts_prints_export_lines_with_working_keys(client):
    api_key, agent_key = demo_keys(run("demo_accounts"))

    assert api_key.startswith("ztp_live_")
    assert agent_key.startswith("ztp_agent_")
    assert balance_with(client, api_key) == 100_000
    assert heartbeat_status(client, agent_key) == 200


@pytest.mark.django_db
def test_demo_accounts_second_run_issues_new_keys_and_revokes_the_old(client):
    first_api, first_agent = demo_keys(run("demo_accounts"))

    second_api, second_agent = demo_keys(run("demo_accounts"))

    assert second_api != first_api
    assert second_agent != first_agent
    assert client.get(BALANCE, HTTP_X_API_KEY=first_api).status_code == 401
    assert heartbeat_status(client, first_agent) == 401
    assert balance_with(client, second_api) == 100_000
    assert heartbeat_status(client, second_agent) == 200


@pytest.mark.django_db
def test_demo_accounts_tops_up_the_buyer_only_once():
    run("demo_accounts")
    run("demo_accounts")
    run("demo_accounts")

    buyer = User.objects.get(email="buyer@demo.zerotp.local")
    assert wallet_balance(buyer) == 100_000
    assert len(topups_of(buyer)) == 1
    assert User.objects.filter(email__endswith="@demo.zerotp.local").count() == 3


@pytest.mark.django_db
def test_seed_demo_gives_the_sms_activate_service_codes():
    run("seed_demo")

    codes = dict(Application.objects.values_list("code", "service_code"))
    assert codes["whatsapp"] == "wa" and codes["telegram"] == "tg" and codes["gojek"] == "ni"
    assert codes["traveloka"] is None  # the protocol's list has no code for it: its slug
    assert set(SERVICE_CODES) <= set(codes)  # every code names a demo application
