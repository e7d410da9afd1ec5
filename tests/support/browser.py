"""Headless Debian Chromium for the console tests, and logging in through the real provider."""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    if os.path.exists(CHROMIUM) or shutil.which("chromium"):
        return
    message = f"{CHROMIUM} is missing: install Debian's chromium (scripts/ensure-browser.sh)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def login(page: Any, console_url: str, idp_url: str, user: dict[str, Any]) -> None:
    """Log in through st.login and the provider's authorization form, as a person would."""
    httpx.put(
        f"{idp_url}/users/{user['sub']}",
        json={k: v for k, v in user.items() if k != "sub"},
        timeout=10,
    ).raise_for_status()
    page.goto(console_url)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{idp_url}/**")
    predefined = page.locator(f"button[name=sub][value='{user['sub']}']")
    if predefined.count():
        predefined.first.click()
    else:
        page.fill("input[name=sub]", user["sub"])
        page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{console_url}/**")
    page.get_by_text("Log out").wait_for(timeout=30_000)
    # "/" moves on to the person's first page (ui/app.py): a click made before that switch
    # lands would be lost with the page it was made on.
    page.wait_for_function(
        "() => !['/', '/home'].includes(location.pathname.replace(/\\/$/, '') || '/')", timeout=30_000
    )
