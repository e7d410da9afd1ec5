"""Browser-test fixtures and helpers shared by the console's test modules.

Registered in tests/conftest.py, so one console process serves every module per database.
"""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.browser import chromium
from tests.support.console import Console
from tests.support.env import CLIENT_ID
from tests.support.factories import AgentCreds, refund_proposal
from tests.support.servers import ApiServer, OidcProvider

LEAD = {
    "sub": "lead",
    "name": "Lee Lead",
    "email": "lead@example.com",
    "groups": ["reviewer", "support_refunds"],
}
RITA = {"sub": "rita", "name": "Rita Reviewer", "email": "rita@example.com", "groups": ["reviewer"]}
ADA = {"sub": "ada", "name": "Ada Admin", "email": "ada@example.com", "groups": ["admin"]}


@pytest.fixture(scope="session")
def console(server: ApiServer, oidc: OidcProvider) -> Iterator[Console]:
    c = Console(server.url, oidc.issuer, CLIENT_ID)
    yield c
    c.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope, not session: Playwright's sync API keeps an asyncio loop running on this
    # thread while it is open, which breaks later tests that call asyncio.run() (SDK, MCP).
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    p = context.new_page()
    p.set_default_timeout(20_000)
    yield p
    context.close()


def propose(api: httpx.Client, agent: AgentCreds, amount: float, **overrides: Any) -> dict[str, Any]:
    # A week of expiry keeps these behind anything more urgent in a shared queue.
    body = refund_proposal(amount, expires_in_seconds=7 * 24 * 3600, **overrides)
    r = api.post("/v1/proposals", json=body, headers=agent.headers)
    assert r.status_code == 201, r.text
    return r.json()


def state(api: httpx.Client, pid: str, headers: dict[str, str]) -> dict[str, Any]:
    return api.get(f"/v1/proposals/{pid}", headers=headers).json()


def keyed(scope: Any, key: str) -> Any:
    """The widget with Streamlit key `key`, as the current run drew it: while a rerun is
    under way the previous run's element stays on the page, marked stale, beside the new
    one, and acting on it would be acting on the case or form that is going away."""
    return scope.locator(f".st-key-{key}:not([data-stale='true'])")


def button(scope: Any, key: str) -> Any:
    # By role: Streamlit keeps a hidden twin of some buttons, which role lookup skips.
    return keyed(scope, key).get_by_role("button")


def pick(page: Any, key: str, option: str, attempts: int = 3) -> None:
    """Choose `option` in the selectbox `key` (typing first: long lists are virtualised).

    A rerun still under way when the page first shows can close the open list and drop
    what was typed; then the list is opened again. The text is filled into the select's own
    input, never typed at the page: once a rerun has closed the list, typed keys reach the
    page's shortcuts ("n" in "All pending" is "Review next" on the queue).
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(attempts):
        keyed(page, key).click()
        keyed(page, key).locator("input").fill(option)
        choice = page.get_by_role("option", name=option, exact=True)
        try:
            choice.wait_for(timeout=5_000)
        except PlaywrightTimeout:
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")
            continue
        choice.click()
        return
