"""Checking an approval receipt offline: the signature against a JWKS, then the claims.

    from signoff.receipts import verify_receipt
    claims = verify_receipt(token, jwks, proposal_id=pid, payload=payload)

``jwks`` is ``GET /.well-known/jwks.json`` (a dict) fetched once and kept; nothing else
talks to the server, so an executor can check what it is asked to run on its own. The
payload's SHA-256 is over canonical JSON (keys sorted, separators ``,`` and ``:``, UTF-8,
no ASCII escaping), as the server computes it.
"""

import hashlib
import json
import time
import warnings
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from signoff.errors import ReceiptInvalid

ALGORITHMS = ["EdDSA"]


def payload_sha256(payload: Any) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _key_set(jwks: dict[str, Any] | KeySet) -> KeySet:
    return jwks if isinstance(jwks, KeySet) else KeySet.import_key_set(jwks)  # type: ignore[arg-type]


def verify_receipt(
    token: str,
    jwks: dict[str, Any] | KeySet,
    *,
    proposal_id: str | None = None,
    payload: dict[str, Any] | None = None,
    action_type: str | None = None,
    now: float | None = None,
    leeway: int = 30,
) -> dict[str, Any]:
    """The receipt's claims, if it is signed by a key of `jwks`, unexpired, and about this
    proposal, payload and action type (each checked when given). Raises
    :class:`ReceiptInvalid` otherwise."""
    try:
        with warnings.catch_warnings():
            # RFC 9864 prefers "Ed25519" to "EdDSA"; the contract names EdDSA.
            warnings.simplefilter("ignore")
            claims = dict(jwt.decode(token, _key_set(jwks), algorithms=ALGORITHMS).claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise ReceiptInvalid(proposal_id, f"bad signature or token ({type(exc).__name__})") from None
    current = time.time() if now is None else now
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp + leeway < current:
        raise ReceiptInvalid(proposal_id, "expired")
    if proposal_id is not None and claims.get("sub") != proposal_id:
        raise ReceiptInvalid(proposal_id, "issued for another proposal")
    if action_type is not None and claims.get("act") != action_type:
        raise ReceiptInvalid(proposal_id, "issued for another action type")
    if payload is not None and claims.get("payload_sha256") != payload_sha256(payload):
        raise ReceiptInvalid(proposal_id, "the payload is not the one approved")
    return claims


class UsedReceipts:
    """The receipts this process has acted on: one receipt, one execution."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def claim(self, claims: dict[str, Any]) -> None:
        jti = str(claims.get("jti", ""))
        if not jti or jti in self._seen:
            raise ReceiptInvalid(claims.get("sub"), "already used")
        self._seen.add(jti)
