"""Login errors: what the identity provider said is shown on the login screen, not dropped."""

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.support.console import Console
from tests.support.servers import OidcProvider

pytestmark = pytest.mark.browser


def test_a_refused_login_shows_the_providers_error(page: Any, console: Console, oidc: OidcProvider) -> None:
    # The person presses Deny on the provider's own page: it redirects back to the console's
    # callback with error=access_denied and a description (RFC 6749 4.1.2.1).
    page.goto(console.url)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{oidc.issuer}/**")
    page.get_by_role("button", name="Deny").click()
    page.wait_for_url(f"{console.url}/**")
    shown = page.locator(".st-key-login_error")
    shown.get_by_text("Error: access_denied", exact=True).wait_for()
    said = "Provider says: The resource owner or authorization server denied the request"
    assert said in shown.inner_text()
    page.get_by_role("button", name="Log in").wait_for()
    assert page.get_by_text("Log out").count() == 0


def test_the_providers_words_are_plain_text(page: Any, console: Console) -> None:
    # The description is whatever the redirect carried: markup in it is shown, never run.
    hostile = {
        "error": "invalid_request",
        "error_description": "<img src=x onerror=alert(1)> **bold** [link](http://127.0.0.1:9/)",
    }
    page.goto(f"{console.url}/oauth2callback?{urlencode(hostile)}")
    shown = page.locator(".st-key-login_error")
    shown.get_by_text("Error: invalid_request", exact=True).wait_for()
    assert f"Provider says: {hostile['error_description']}" in shown.inner_text()
    assert shown.locator("img, a, strong").count() == 0
    page.get_by_role("button", name="Log in").wait_for()


def test_a_code_the_console_cannot_exchange_is_said_so(
    page: Any, console: Console, oidc: OidcProvider
) -> None:
    # A real login started at the provider, then a callback with its own state but a code the
    # provider never issued: the token exchange fails inside Streamlit, which used to send the
    # person back to the plain login screen without a word.
    page.goto(console.url)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{oidc.issuer}/**")
    state = parse_qs(urlsplit(page.url).query)["state"][0]
    page.goto(f"{console.url}/oauth2callback?{urlencode({'code': 'never-issued', 'state': state})}")
    shown = page.locator(".st-key-login_error")
    shown.get_by_text("Error: login_not_completed", exact=True).wait_for()
    assert "could not complete the login" in shown.inner_text()
    page.get_by_role("button", name="Log in").wait_for()
    assert page.get_by_text("Log out").count() == 0
