"""A scripted webhook receiver: answers each request as told (status, body, or hang)."""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = "hang"


@dataclass
class Received:
    headers: dict[str, str]
    body: str
    answered: int | str
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    """`script[i]` answers request i: an int status, (status, json body), (status, json body,
    headers), or HANG; then `default`."""

    def __init__(self, script: list[Any] | None = None, default: Any = 200) -> None:
        self.script = list(script or [])
        self.default = default
        self.requests: list[Received] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                with receiver._lock:
                    n = len(receiver.requests)
                    answer = receiver.script[n] if n < len(receiver.script) else receiver.default
                    status = answer[0] if isinstance(answer, tuple) else answer
                    receiver.requests.append(Received(dict(self.headers), body, status))
                if answer == HANG:
                    receiver.release.wait(30)
                    return
                payload = json.dumps(answer[1]).encode() if isinstance(answer, tuple) else b""
                self.send_response(int(status))
                self.send_header("content-type", "application/json")
                extra = answer[2] if isinstance(answer, tuple) and len(answer) > 2 else {}
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self) -> list[Received]:
        return [r for r in self.requests if isinstance(r.answered, int) and 200 <= r.answered < 300]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def eventually(check: Any, timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll until `check()` is truthy (waiting for background work, not asserting speed)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
