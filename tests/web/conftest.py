"""Fixtures of the dashboard tests: logged-in test clients for the page tests, and for the
browser tests Debian's chromium (never a downloaded one) driven by pytest-playwright
against pytest-django's live server, plus a screenshot folder named after the run."""

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import translation

from accounts.models import User
from accounts.services import account_create
from billing.services import topup
from modems.models import Modem
from orders.models import Application
from tests.factories import ApplicationFactory, ModemFactory, make_agent

# Playwright's sync API runs an event loop in the test's thread; the ORM calls the tests
# make beside it are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PASSWORD = "correct horse battery"

SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"
# One folder per run, shared by pytest-xdist workers (they inherit the controller's env).
RUN_ID = os.environ.setdefault(
    "ZEROTP_SCREENSHOT_RUN", time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"
)
_taken: list[str] = []


# --- Accounts -----------------------------------------------------------------------------


@dataclass
class Account:
    user: User
    email: str
    password: str
    api_key: str
    agent_key: str | None = None


def make_account(
    email: str, *, balance: int = 0, reseller: bool = False, staff: bool = False
) -> Account:
    created = account_create(
        email=email, password=PASSWORD, is_reseller=reseller, with_api_key=True
    )
    assert created.api_key
    if staff:
        User.objects.filter(pk=created.user.pk).update(is_staff=True, is_superuser=True)
        created.user.refresh_from_db()
    if balance:
        topup(user=created.user, amount=balance, note="test opening balance")
    return Account(created.user, email, PASSWORD, created.api_key, created.agent_key)


@pytest.fixture
def buyer_account(db: None) -> Account:
    return make_account("buyer@example.com", balance=10_000)


@pytest.fixture
def reseller_account(db: None) -> Account:
    return make_account("pool@example.com", reseller=True)


@pytest.fixture
def staff_account(db: None) -> Account:
    return make_account("staff@example.com", staff=True)


def logged_in(account: Account) -> Client:
    client = Client()
    client.force_login(account.user)
    return client


@pytest.fixture
def buyer_client(buyer_account: Account) -> Client:
    return logged_in(buyer_account)


@pytest.fixture
def reseller_client(reseller_account: Account) -> Client:
    return logged_in(reseller_account)


@pytest.fixture
def staff_client(staff_account: Account) -> Client:
    return logged_in(staff_account)


@pytest.fixture
def whatsapp(db: None) -> Application:
    return ApplicationFactory(
        name="WhatsApp",
        code="whatsapp",
        sender_patterns="\\bwhats\\s?app\\b",
        prices={"normal": 3500, "promo": 2500},
    )


@pytest.fixture
def online_modem(db: None) -> Modem:
    """An online, orderable modem of some reseller, serving the normal operator."""
    return ModemFactory(reseller=make_agent().user, phone_number="628111234567")


# --- The browser ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def base_url() -> None:
    # The tests build URLs from live_server.url. This also replaces pytest-playwright's
    # fallback fixture, which pytest 9 warns about (an instance-method session fixture).
    return None


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `apt-get update && apt-get install -y chromium` "
            "(.ci/run does it). Playwright's own browser download is never used."
        )
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_context_args,
        "viewport": DESKTOP,
        "locale": "en-US",
        # The first users are Indonesian: times on the pages show in Jakarta time.
        "timezone_id": "Asia/Jakarta",
        "permissions": ["clipboard-read", "clipboard-write"],
    }


@pytest.fixture(autouse=True)
def _english_after_each_test() -> Iterator[None]:
    # A request in Indonesian leaves the language active in this thread; later tests
    # elsewhere expect Django's own messages in English.
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _expect_timeout() -> None:
    from playwright.sync_api import expect

    # Live parts poll every 2-3 s; allow a few polls before failing.
    expect.set_options(timeout=10_000)


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    folder = SCREENSHOTS / RUN_ID
    folder.mkdir(parents=True, exist_ok=True)
    return folder


Shoot = Callable[[Any, str], None]


@pytest.fixture
def shoot(screenshot_dir: Path) -> Shoot:
    """Screenshot the page at desktop and phone width (`<name>-desktop.png`,
    `<name>-phone.png`), and check that at neither width the page scrolls sideways."""

    def take(page: Any, name: str) -> None:
        original = page.viewport_size
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {label} width"
            path = screenshot_dir / f"{name}-{label}.png"
            page.screenshot(path=path, full_page=True, animations="disabled")
            _taken.append(path.name)
        page.set_viewport_size(original)

    return take


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _taken:
        folder = SCREENSHOTS / RUN_ID
        terminalreporter.write_sep("-", "dashboard screenshots")
        terminalreporter.write_line(f"{len(_taken)} screenshots in {folder}")
        latest = SCREENSHOTS / "latest"
        if latest.is_symlink():
            latest.unlink()
        elif latest.exists():
            shutil.rmtree(latest)
        latest.symlink_to(folder.name)


@pytest.fixture
def log_in(live_server: Any) -> Callable[[Any, Account], None]:
    def go(page: Any, account: Account) -> None:
        from playwright.sync_api import expect

        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Email").fill(account.email)
        page.get_by_label("Password").fill(account.password)
        page.get_by_role("button", name="Log in").click()
        # A reseller lands on the reseller page, everyone else on the dashboard.
        landing = "Reseller" if account.user.is_reseller else "Dashboard"
        expect(page.get_by_role("heading", name=landing, exact=True)).to_be_visible()

    return go
