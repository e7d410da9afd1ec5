"""panva's `oidc-provider` (Node) in its own process: an OIDC provider we did not write.

`scripts/ensure-node.sh` installs it (``make test`` runs that); the server is
`tests/support/node/oidc-server.mjs`. Tokens come from the real authorization-code flow.
"""

import base64
import hashlib
import json
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

from backend.demo.stack import stop, wait_http
from tests.support.servers import free_port

HERE = Path(__file__).resolve().parent / "node"
REDIRECT = "http://localhost/callback"


class NodeOidcProvider:
    def __init__(self, port: int, issuer: str | None = None, keys_file: Path | None = None) -> None:
        node = shutil.which("node")
        if node is None or not (HERE / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError("oidc-provider is not installed: run 'bash scripts/ensure-node.sh'")
        # Once in four fresh-clone CI runs the provider, alive, never answered within 60 s.
        # It is started once more then, on a new port unless the issuer is fixed, and a
        # second failure names the provider's own last words (its log file).
        for attempt in (1, 2):
            self.port = port
            self.issuer = issuer or f"http://localhost:{port}"
            self.base = f"http://localhost:{port}"
            args = [node, str(HERE / "oidc-server.mjs"), str(port), self.issuer]
            if keys_file is not None:
                args.append(str(keys_file))
            log = tempfile.NamedTemporaryFile(prefix="node-oidc-", suffix=".log", delete=False)  # noqa: SIM115
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
            try:
                wait_http(f"{self.base}/.well-known/openid-configuration", self.proc, timeout=40)
                return
            except (TimeoutError, RuntimeError) as exc:
                stop(self.proc)
                said = Path(log.name).read_text(errors="replace")[-2000:]
                if attempt == 2:
                    raise RuntimeError(f"{exc}; the provider said: {said or '(nothing)'}") from None
                if issuer is None:
                    port = free_port()
            finally:
                # The provider keeps its own handle; the name is only for reading it back.
                log.close()
                Path(log.name).unlink(missing_ok=True)

    def set_user(self, sub: str, **claims: Any) -> None:
        httpx.put(f"{self.base}/test/users/{sub}", json=claims, timeout=10).raise_for_status()

    def rotate(self) -> list[str]:
        """New signing keys (new key ids) at once; the old ones are no longer published."""
        r = httpx.post(f"{self.base}/test/rotate", timeout=30)
        r.raise_for_status()
        return list(r.json()["kids"])

    def private_keys(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.base}/test/keys", timeout=10).json()["keys"])

    def login(
        self,
        sub: str,
        client_id: str = "signoff-rs256",
        scope: str = "openid email profile groups",
        id_token_claims: list[str] | None = None,
    ) -> dict[str, Any]:
        """Log `sub` in (authorization code + PKCE); the token response (id_token, access_token).

        `id_token_claims` asks, with the standard `claims` parameter, for claims in the ID
        token itself; otherwise this provider puts the scopes' claims only in /userinfo.
        """
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        params = {
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": scope,
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "login_hint": sub,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if id_token_claims:
            params["claims"] = json.dumps({"id_token": {c: None for c in id_token_claims}})
        with httpx.Client(base_url=self.base, timeout=10) as c:
            r = c.get("/auth", params=params)
            for _ in range(10):
                location = r.headers.get("location", "")
                if r.status_code not in (302, 303) or location.startswith(REDIRECT):
                    break
                r = c.get(location)
            query = parse_qs(urlparse(r.headers.get("location", "")).query)
            assert "code" in query, f"no code: {r.status_code} {r.headers.get('location')} {r.text[:300]}"
            t = c.post(
                "/token",
                data={
                    "grant_type": "authorization_code",
                    "code": query["code"][0],
                    "redirect_uri": REDIRECT,
                    "client_id": client_id,
                    "client_secret": "secret",
                    "code_verifier": verifier,
                },
            )
            t.raise_for_status()
            return dict(t.json())

    def close(self) -> None:
        stop(self.proc)
