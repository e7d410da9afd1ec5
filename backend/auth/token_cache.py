"""Recently verified ID tokens, so a reviewer's every request does not pay for a signature
check (about a millisecond of RSA and JOSE work): a token's signature and claims cannot
change, so its verified answer holds until the token's ``exp`` (kept at most a minute, and
an expired token is verified again, which refuses it)."""

import hashlib
import threading
import time

from backend.auth.oidc import User

_MAX_ENTRIES = 4096
_MAX_SECONDS = 60.0


class TokenCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[User, float]] = {}

    @staticmethod
    def key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, key: str) -> User | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        user, until = hit
        if time.time() >= until:
            with self._lock:
                self._entries.pop(key, None)
            return None
        return user

    def put(self, key: str, user: User) -> None:
        exp = user.claims.get("exp")
        if not isinstance(exp, int | float):
            return
        until = min(float(exp), time.time() + _MAX_SECONDS)
        with self._lock:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (user, until)


verified = TokenCache()
