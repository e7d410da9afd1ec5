"""Webhook signing secrets, sealed at rest with the encryption key (``backend/core/keys.py``).

The worker needs the plaintext to sign (Standard Webhooks uses HMAC), so a secret cannot be
hashed; it is sealed (Fernet: AES-128-CBC and HMAC-SHA256) instead, and the key is not in
the database. A row written before sealing (``whsec_...``) is still read; rotating the
encryption key keeps old rows readable through the retired keys.
"""

from cryptography.fernet import InvalidToken

from backend.core.keys import get_keys
from backend.webhooks.signing import SECRET_PREFIX

SEALED = "sealed:"


class SecretUnreadable(RuntimeError):
    """A sealed secret that no configured key opens (the key was lost or not retired)."""


def seal(secret: str) -> str:
    return SEALED + get_keys().fernet.encrypt(secret.encode()).decode()


def unseal(stored: str) -> str:
    if stored.startswith(SECRET_PREFIX):
        return stored  # written before secrets were sealed
    try:
        return get_keys().fernet.decrypt(stored.removeprefix(SEALED).encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("No configured encryption key opens this webhook secret.") from None
