"""The review console as a real Streamlit process for tests, configured by its own secrets file."""

import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend.demo import stack
from tests.support.servers import ROOT, free_port

ARTIFACTS = ROOT / "test-artifacts"
DOC_IMAGES = ROOT / "docs" / "img"


class Console:
    """`streamlit run ui/app.py` from a temp dir holding `.streamlit/secrets.toml`."""

    def __init__(self, api_url: str, idp_url: str, client_id: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://localhost:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="signoff-console-"))
        stack.write_secrets(self.workdir, stack.secrets_toml(self.port, idp_url, api_url, client_id))
        env = {**os.environ, "SIGNOFF_API_URL": api_url}
        self.proc = subprocess.Popen(
            stack.console_command(self.port, error_details="full"),
            cwd=self.workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stack.wait_http(f"{self.url}/_stcore/health", self.proc)

    def close(self) -> None:
        stack.stop(self.proc)


def wait_until(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll the backend until `check()` is truthy (the browser acts asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def screenshot(page: Any, name: str, for_docs: bool) -> None:
    """Always into test-artifacts/; into docs/img/ when missing or SIGNOFF_UPDATE_DOCS_IMG=1
    (so an ordinary test run does not leave the working tree dirty)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    refresh = os.environ.get("SIGNOFF_UPDATE_DOCS_IMG") == "1" or not (DOC_IMAGES / f"{name}.png").exists()
    if for_docs and refresh:
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOC_IMAGES / f"{name}.png"))
