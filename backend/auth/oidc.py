"""Verification of OIDC ID tokens against the issuer's published keys.

Discovery and the JWKS are fetched once and cached; a token signed with a key id we
have not seen triggers one refetch (rate-limited), which is how key rotation is picked
up without a restart. Signature, ``iss``, ``aud`` (the client id) and ``exp`` are checked
by joserfc.
"""

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet

from backend.core.errors import ApiError
from backend.core.settings import Settings

_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
_HEADERS = {"WWW-Authenticate": 'Bearer realm="signoff"'}
_MIN_REFRESH_SECONDS = 10


@dataclass(frozen=True)
class User:
    """A person, as their ID token describes them."""

    sub: str
    email: str | None
    name: str | None
    groups: tuple[str, ...]
    claims: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def actor(self) -> str:
        return f"user:{self.sub}"

    def has(self, role: str) -> bool:
        return role in self.groups


def _invalid(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers=_HEADERS)


class OidcVerifier:
    def __init__(self, settings: Settings) -> None:
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.client_id = settings.oidc_client_id
        self.roles_claim = settings.oidc_roles_claim
        self.cache_seconds = settings.oidc_cache_seconds
        self.leeway = settings.oidc_leeway_seconds
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._fetched_at = 0.0

    def _fetch_keys(self) -> KeySet:
        try:
            with httpx.Client(timeout=5.0) as client:
                meta = client.get(f"{self.issuer}/.well-known/openid-configuration")
                meta.raise_for_status()
                doc = meta.json()
                if doc.get("issuer", "").rstrip("/") != self.issuer:
                    raise ApiError(503, "oidc_misconfigured", "The identity provider names another issuer.")
                jwks = client.get(doc["jwks_uri"])
                jwks.raise_for_status()
                return KeySet.import_key_set(jwks.json())
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise ApiError(
                503, "identity_provider_unavailable", "The identity provider cannot be reached."
            ) from exc

    def keys(self, force: bool = False) -> KeySet:
        with self._lock:
            now = time.monotonic()
            stale = now - self._fetched_at > self.cache_seconds
            may_refresh = now - self._fetched_at > _MIN_REFRESH_SECONDS
            if self._keys is None or stale or (force and may_refresh):
                self._keys = self._fetch_keys()
                self._fetched_at = now
            return self._keys

    def verify(self, token: str) -> User:
        try:
            try:
                decoded = jwt.decode(token, self.keys(), algorithms=_ALGORITHMS)
            except (ValueError, BadSignatureError):
                # Possibly a key we have not seen yet (rotation): refetch once.
                decoded = jwt.decode(token, self.keys(force=True), algorithms=_ALGORITHMS)
            registry = jwt.JWTClaimsRegistry(
                leeway=self.leeway,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                exp={"essential": True},
                sub={"essential": True},
            )
            registry.validate(decoded.claims)
        except ExpiredTokenError as exc:
            raise _invalid("token_expired", "The ID token has expired; log in again.") from exc
        except (InvalidClaimError, MissingClaimError) as exc:
            raise _invalid(
                "invalid_token", f"The ID token is not for this service: {exc.description}"
            ) from exc
        except (JoseError, ValueError) as exc:
            raise _invalid("invalid_token", "The ID token could not be verified.") from exc
        claims = decoded.claims
        groups = claims.get(self.roles_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        return User(
            sub=str(claims["sub"]),
            email=claims.get("email"),
            name=claims.get("name"),
            groups=tuple(str(g) for g in groups),
            claims=claims,
        )
