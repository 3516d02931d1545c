"""Security headers and the Content-Security-Policy on every page and API answer."""

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

PATHS = ["/", "/login/", "/signup/", "/api/v1/services", "/api/docs/", "/admin/login/"]


@pytest.mark.parametrize("path", PATHS)
def test_every_answer_carries_the_security_headers(path: str) -> None:
    response = Client().get(path)

    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    # A nonce appears only where a page used one: no inline script runs without it.
    assert re.search(r"script-src 'self'(?: 'nonce-[A-Za-z0-9+/=_-]+')?;", csp)
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_the_pages_inline_script_carries_the_nonce_of_its_answer() -> None:
    response = Client().get("/")
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    html = response.content.decode()
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
    assert inline and all(f'nonce="{nonce}"' in attributes for attributes in inline)
