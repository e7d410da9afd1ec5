"""Verification of OIDC ID tokens against the issuer's published keys.

Discovery and the JWKS are fetched once and cached. A token signed with a key id the cached
set does not hold makes the verifier refetch the set at once (at most once per
``oidc_refetch_seconds``, so forged key ids cannot make us hammer the provider): that is how a
key rotated at the provider is picked up without a restart. The issuer is compared exactly as
configured (a trailing ``/`` included, as Auth0 writes it). Each refusal has its own code
(`docs/identity.md` lists them), so the console can tell "log in again" from "this login
can never work here".

Groups (the roles Signoff checks) come from the ID token or from the provider's /userinfo
(``oidc_groups_source``); /userinfo needs the person's access token, sent beside the ID token
in the ``X-Signoff-Access-Token`` header.
"""

import hashlib
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidTokenError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet

from backend.core.errors import ApiError
from backend.core.settings import Settings

# Asymmetric algorithms only: a shared-secret HS256 token would let anyone holding the client
# secret mint logins. "Ed25519" is the fully specified name (RFC 9864) providers now advertise.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
ED_ALGORITHMS = ("EdDSA", "Ed25519")
_HEADERS = {"WWW-Authenticate": 'Bearer realm="signoff"'}
ACCESS_TOKEN_HEADER = "X-Signoff-Access-Token"
_USERINFO_CACHE = 1024
_SPLIT = re.compile(r"[\s,]+")


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


def _unavailable(message: str) -> ApiError:
    return ApiError(503, "identity_provider_unavailable", message)


def parse_groups(value: Any) -> tuple[str, ...]:
    """A groups claim in any shape providers send: a JSON list, or one string of names
    separated by spaces and/or commas (as a scope-like claim is). Anything else is no group."""
    if isinstance(value, str):
        items: list[Any] = _SPLIT.split(value)
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return ()
    return tuple(dict.fromkeys(str(g).strip() for g in items if str(g).strip()))


def claim_at(claims: dict[str, Any], name: str) -> Any:
    """The claim `name`; when no claim has that exact name, a dotted path into nested objects
    (Keycloak's ``realm_access.roles``). Exact names come first because namespaced claims are
    URLs full of dots (Auth0's ``https://signoff.example/groups``)."""
    if name in claims:
        return claims[name]
    node: Any = claims
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


class OidcVerifier:
    def __init__(self, settings: Settings) -> None:
        self.issuer = settings.oidc_issuer
        self.client_id = settings.oidc_client_id
        self.roles_claim = settings.oidc_roles_claim
        self.groups_source = settings.oidc_groups_source
        self.cache_seconds = settings.oidc_cache_seconds
        self.refetch_seconds = settings.oidc_refetch_seconds
        self.leeway = settings.oidc_leeway_seconds
        self.algorithms = [*ALGORITHMS, *ED_ALGORITHMS]
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._meta: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._refetched_at = float("-inf")
        self.key_fetches = 0  # how often the JWKS was fetched (tests read it)
        self._userinfo: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

    # -- the provider's metadata and keys -------------------------------------------------

    def _discovery_url(self) -> str:
        # OIDC Discovery 1.0 section 4: the issuer, any trailing "/" removed, then the path.
        return f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"

    def _fetch(self) -> tuple[dict[str, Any], KeySet]:
        try:
            with httpx.Client(timeout=5.0) as client:
                meta = client.get(self._discovery_url())
                meta.raise_for_status()
                doc = meta.json()
                if doc.get("issuer") != self.issuer:
                    raise ApiError(
                        503,
                        "oidc_misconfigured",
                        f"The identity provider calls itself {doc.get('issuer')!r}, but "
                        f"SIGNOFF_OIDC_ISSUER is {self.issuer!r}: they must match exactly.",
                    )
                jwks = client.get(doc["jwks_uri"])
                jwks.raise_for_status()
                keys = KeySet.import_key_set(_signing_keys(jwks.json()))
        except (httpx.HTTPError, KeyError, ValueError, TypeError, JoseError) as exc:
            raise _unavailable("The identity provider cannot be reached.") from exc
        self.key_fetches += 1
        return doc, keys

    def keys(self, refetch: bool = False) -> KeySet:
        """The cached key set; fetched when stale, or when `refetch` (an unknown key id) unless
        another unknown key id already refetched it within the rate limit."""
        with self._lock:
            now = time.monotonic()
            forced = refetch and now - self._refetched_at >= self.refetch_seconds
            if self._keys is None or now - self._fetched_at > self.cache_seconds or forced:
                self._meta, self._keys = self._fetch()
                self._fetched_at = now
                if forced:
                    self._refetched_at = now
            return self._keys

    def _key_for(self, kid: str | None, alg: str) -> KeySet:
        keys = self.keys()
        if not _has_key(keys, kid):
            keys = self.keys(refetch=True)
        if not _has_key(keys, kid):
            raise _invalid(
                "unknown_signing_key",
                f"The ID token is signed with key {kid!r}, which the identity provider does not publish.",
            )
        return keys

    # -- verification ---------------------------------------------------------------------

    def verify(self, token: str, access_token: str | None = None) -> User:
        try:
            header = jws.extract_compact(token.encode()).protected
        except (JoseError, ValueError, TypeError, UnicodeError) as exc:
            raise _invalid("malformed_token", "The bearer token is not a signed JWT.") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self.algorithms:
            raise _invalid(
                "unsupported_algorithm",
                f"The ID token is signed with {alg!r}; accepted: {', '.join(self.algorithms)}.",
            )
        keys = self._key_for(kid if isinstance(kid, str) else None, alg)
        try:
            decoded = jwt.decode(token, keys, algorithms=[alg])
        except BadSignatureError as exc:
            raise _invalid("invalid_signature", "The ID token's signature does not verify.") from exc
        except (JoseError, ValueError, TypeError) as exc:
            raise _invalid("malformed_token", "The ID token could not be decoded.") from exc
        claims = dict(decoded.claims)
        self._check_claims(claims)
        groups = self._groups(claims, access_token)
        return User(
            sub=str(claims["sub"]),
            email=claims.get("email"),
            name=claims.get("name"),
            groups=groups,
            claims=claims,
        )

    def _check_claims(self, claims: dict[str, Any]) -> None:
        for name in ("iss", "aud", "exp", "sub"):
            if name not in claims:
                raise _invalid("missing_claim", f"The ID token has no {name!r} claim.")
        if claims["iss"] != self.issuer:
            raise _invalid(
                "wrong_issuer", f"The ID token is from {claims['iss']!r}, not from {self.issuer!r}."
            )
        aud = claims["aud"]
        audiences = aud if isinstance(aud, list) else [aud]
        if self.client_id not in audiences:
            raise _invalid("wrong_audience", f"The ID token is not for the client {self.client_id!r}.")
        # OIDC Core 3.1.3.7: with several audiences, azp must name us.
        if len(audiences) > 1 and claims.get("azp", self.client_id) != self.client_id:
            raise _invalid("wrong_audience", f"The ID token was issued to {claims.get('azp')!r}.")
        registry = jwt.JWTClaimsRegistry(leeway=self.leeway, exp={"essential": True})
        try:
            registry.validate(claims)
        except ExpiredTokenError as exc:
            raise _invalid("token_expired", "The ID token has expired; log in again.") from exc
        except InvalidTokenError as exc:
            raise _invalid("token_not_yet_valid", "The ID token is not valid yet (check clocks).") from exc
        except (InvalidClaimError, MissingClaimError) as exc:
            raise _invalid("invalid_claim", f"The ID token is not usable: {exc.description}") from exc

    # -- groups ---------------------------------------------------------------------------

    def _groups(self, claims: dict[str, Any], access_token: str | None) -> tuple[str, ...]:
        in_token = claim_at(claims, self.roles_claim)
        if self.groups_source == "id_token" or (self.groups_source == "auto" and in_token is not None):
            return parse_groups(in_token)
        if not access_token:
            if self.groups_source == "userinfo":
                raise _invalid(
                    "access_token_required",
                    f"Groups are read from /userinfo: send the access token in {ACCESS_TOKEN_HEADER}.",
                )
            return ()
        info = self.userinfo(access_token)
        if str(info.get("sub")) != str(claims["sub"]):
            # OIDC Core 5.3.2: a userinfo answer for someone else must not be used.
            raise _invalid("userinfo_mismatch", "The access token belongs to someone else.")
        return parse_groups(claim_at(info, self.roles_claim))

    def userinfo(self, access_token: str) -> dict[str, Any]:
        """The provider's /userinfo for this access token, remembered for a minute."""
        cache_key = hashlib.sha256(access_token.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            hit = self._userinfo.get(cache_key)
            if hit and now - hit[0] < 60:
                return hit[1]
        self.keys()
        endpoint = self._meta.get("userinfo_endpoint")
        if not endpoint:
            raise ApiError(503, "oidc_misconfigured", "The identity provider has no userinfo endpoint.")
        try:
            r = httpx.get(endpoint, headers={"Authorization": f"Bearer {access_token}"}, timeout=5.0)
        except httpx.HTTPError as exc:
            raise _unavailable("The identity provider's userinfo endpoint cannot be reached.") from exc
        if r.status_code in (400, 401, 403):
            raise _invalid("access_token_refused", "The identity provider refused the access token.")
        try:
            r.raise_for_status()
            info = r.json()
            if not isinstance(info, dict):
                raise ValueError("not an object")
        except (httpx.HTTPError, ValueError) as exc:
            raise _unavailable("The identity provider's userinfo answer is not JSON.") from exc
        with self._lock:
            self._userinfo[cache_key] = (now, info)
            while len(self._userinfo) > _USERINFO_CACHE:
                self._userinfo.popitem(last=False)
        return info


def _signing_keys(jwks: dict[str, Any]) -> dict[str, Any]:
    """The JWKS without encryption keys or key types we cannot use (one odd key must not hide
    the others)."""
    usable = [
        k
        for k in jwks.get("keys", [])
        if isinstance(k, dict) and k.get("use", "sig") == "sig" and k.get("kty") in ("RSA", "EC", "OKP")
    ]
    return {"keys": usable}


def _has_key(keys: KeySet, kid: str | None) -> bool:
    if kid is None:
        return len(keys.keys) > 0
    return any(k.kid == kid for k in keys.keys)
