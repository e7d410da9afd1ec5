"""Screenshots of every console page for each role, at 1366x768 and 1920x1080, into docs/img/.

Run against a running `make demo` (its realistic queue, hostile cases included):

    make demo &            # or: signoff demo --ui-port ... --idp-port ...
    python scripts/screenshots.py [--ui http://localhost:8501] [--idp http://localhost:9400]

Needs Playwright and Debian's Chromium (the dev extra and scripts/ensure-browser.sh). Not part
of the test suite: 30-odd page loads cost a minute and a half on two cores.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.browser import chromium, login  # noqa: E402

SIZES = [(1366, 768), (1920, 1080)]
REVIEW = ["queue", "review", "decided", "metrics"]
ROLES = {
    "lead": (
        {"sub": "lee-support-lead", "name": "Lee Lead", "groups": ["reviewer", "support_refunds"]},
        REVIEW,
    ),
    "reviewer": ({"sub": "rita-reviewer", "name": "Rita Reviewer", "groups": ["reviewer"]}, REVIEW),
    "admin": (
        {"sub": "ada-admin", "name": "Ada Admin", "groups": ["admin"]},
        [*REVIEW, "agents", "policies", "audit"],
    ),
    "auditor": ({"sub": "avi-auditor", "name": "Avi Auditor", "groups": ["auditor"]}, ["audit"]),
}


def settle(page: object) -> None:
    """Wait until Streamlit has finished its run (the running indicator is gone)."""
    page.wait_for_timeout(1200)  # type: ignore[attr-defined]
    page.wait_for_selector(  # type: ignore[attr-defined]
        "[data-testid='stStatusWidget']", state="detached", timeout=60_000
    )
    page.wait_for_selector(  # type: ignore[attr-defined]
        "[data-testid='stSkeleton']", state="detached", timeout=60_000
    )
    page.wait_for_timeout(2500)  # tables and charts draw after the run ends


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ui", default="http://localhost:8501")
    parser.add_argument("--idp", default="http://localhost:9400")
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        for role, (user, pages) in ROLES.items():
            context = browser.new_context(viewport={"width": SIZES[0][0], "height": SIZES[0][1]})
            page = context.new_page()
            page.set_default_timeout(60_000)
            login(page, args.ui, args.idp, {**user, "email": f"{user['sub']}@example.com"})
            for name in pages:
                for width, height in SIZES:
                    page.set_viewport_size({"width": width, "height": height})
                    if name == "review":
                        # The most urgent case of all, whether or not this role may approve it.
                        page.goto(f"{args.ui}/queue")
                        settle(page)
                        page.locator(".st-key-view").click()
                        page.get_by_role("option", name="All pending", exact=True).click()
                        settle(page)
                        page.locator("[class*='st-key-open_'] button").first.click()
                    else:
                        page.goto(f"{args.ui}/{name}")
                    settle(page)
                    path = out / f"{name}-{role}-{width}.png"
                    page.screenshot(path=str(path))
                    print(path.relative_to(ROOT))
            context.close()


if __name__ == "__main__":
    main()
