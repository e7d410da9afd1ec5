"""The public keys: what executors, agents and auditors check receipts and checkpoints with."""

from fastapi import APIRouter

from backend.core.keys import get_keys
from backend.core.responses import JsonResponse

router = APIRouter(tags=["keys"])


@router.get("/.well-known/jwks.json")
def jwks() -> JsonResponse:
    """The Ed25519 keys (current first, then retired ones still accepted), as a JWK Set."""
    return JsonResponse(get_keys().jwks(), headers={"Cache-Control": "public, max-age=300"})
