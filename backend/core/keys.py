"""Signoff's keys: the signing key, the audit MAC key and the encryption key.

None of them lives in the database, so write access to the database is not enough to
forge a receipt, an audit event or a checkpoint, or to read a webhook secret. Each comes
from the settings (inline or a file); when neither is set it is generated on first use into
``key_dir``, which is how the demo runs (``docs/operations.md`` says how to rotate them).

- signing: Ed25519, for approval receipts and audit checkpoints (published as a JWKS);
- audit: HMAC-SHA256 over every audit event's hash and over the chain's head;
- encryption: Fernet, sealing webhook signing secrets at rest.

Each key has an id (``kid``): a receipt, an event's MAC and a sealed secret name the key
that made them, so retired keys keep verifying what they made.
"""

import base64
import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import structlog
from cryptography.fernet import Fernet, MultiFernet
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet, OKPKey

from backend.core.settings import Settings, get_settings

log = structlog.get_logger()


class KeyConfigError(RuntimeError):
    """A configured key cannot be read or is not the kind expected."""


@dataclass(frozen=True)
class Keys:
    signing: OKPKey
    kid: str
    verifying: dict[str, OKPKey]
    mac_kid: str
    mac_key: bytes
    mac_keys: dict[str, bytes]
    fernet: MultiFernet

    def jwks(self) -> dict[str, list[dict[str, object]]]:
        """The public keys, current first: what ``/.well-known/jwks.json`` serves."""
        ordered = [self.kid, *(k for k in self.verifying if k != self.kid)]
        return {"keys": [_public_jwk(self.verifying[k], k) for k in ordered]}

    def sign_compact(self, payload: bytes) -> str:
        """A compact JWS (RFC 7515) over `payload`: EdDSA with the current key, header
        ``{"alg": "EdDSA", "kid"}``. Built here on the key joserfc loaded, because joserfc's
        own serialize spends as long again as the signature on a path every approval takes;
        tests check every token with joserfc and with authlib."""
        signing_input = _header_segment(self.kid) + b"." + _b64(payload)
        signature = self.signing.private_key.sign(signing_input)
        return (signing_input + b"." + _b64(signature)).decode()

    def key_set(self) -> KeySet:
        return KeySet([OKPKey.import_key(_public_jwk(k, kid)) for kid, k in self.verifying.items()])


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@lru_cache(maxsize=8)
def _header_segment(kid: str) -> bytes:
    return _b64(json.dumps({"alg": "EdDSA", "kid": kid}, separators=(",", ":")).encode())


def _public_jwk(key: OKPKey, kid: str) -> dict[str, object]:
    return {**key.as_dict(private=False), "kid": kid, "alg": "EdDSA", "use": "sig"}


def _generated(path: Path, make: bytes) -> bytes:
    """Read `path`, or create it with `make` (0600) if absent; several processes starting at
    once agree on whichever wrote first."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    except OSError as exc:
        raise KeyConfigError(
            f"No key is configured and {path} cannot be created ({exc.strerror}): set the key "
            "or its file in the settings (docs/operations.md, Keys)."
        ) from None
    with os.fdopen(fd, "wb") as f:
        f.write(make)
    log.warning("key_generated", path=str(path))
    return make


def _material(inline: str | None, file: str | None, default: Path, make: bytes) -> bytes:
    if inline:
        return inline.encode()
    if file:
        try:
            return Path(file).read_bytes()
        except OSError as exc:
            raise KeyConfigError(f"Cannot read the key file {file}: {exc.strerror}") from None
    return _generated(default, make)


def _files(value: str) -> list[bytes]:
    out = []
    for name in (v.strip() for v in value.split(",")):
        if name:
            try:
                out.append(Path(name).read_bytes())
            except OSError as exc:
                raise KeyConfigError(f"Cannot read the key file {name}: {exc.strerror}") from None
    return out


def _ed25519(pem: bytes) -> OKPKey:
    try:
        key = OKPKey.import_key(pem)
    except Exception:
        raise KeyConfigError("The signing key is not an Ed25519 PEM key.") from None
    if key.curve_name != "Ed25519":
        raise KeyConfigError("The signing key is not an Ed25519 key.")
    return key


def mac_kid(secret: bytes) -> str:
    return hashlib.sha256(b"signoff-audit-kid:" + secret).hexdigest()[:8]


def _mac_secret(raw: bytes) -> bytes:
    secret = raw.strip()
    if len(secret) < 32:
        raise KeyConfigError("The audit key must be at least 32 bytes.")
    return secret


def new_signing_pem() -> bytes:
    return OKPKey.generate_key("Ed25519").as_pem(private=True)


def new_audit_secret() -> bytes:
    return base64.urlsafe_b64encode(os.urandom(32))


def load(settings: Settings) -> Keys:
    # The contract names the JWS algorithm "EdDSA" (RFC 8037); joserfc warns that RFC 9864
    # prefers "Ed25519". Same signature; the warning says nothing the operator can act on.
    warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)
    base = Path(settings.key_dir)
    signing = _ed25519(
        _material(settings.signing_key, settings.signing_key_file, base / "signing.pem", new_signing_pem())
    )
    kid = signing.thumbprint()
    verifying = {kid: signing}
    for pem in _files(settings.retired_signing_key_files):
        old = _ed25519(pem)
        verifying.setdefault(old.thumbprint(), old)
    mac = _mac_secret(
        _material(settings.audit_key, settings.audit_key_file, base / "audit.key", new_audit_secret())
    )
    macs = {mac_kid(mac): mac}
    for raw in _files(settings.retired_audit_key_files):
        old_mac = _mac_secret(raw)
        macs.setdefault(mac_kid(old_mac), old_mac)
    sealing = _material(
        settings.encryption_key, settings.encryption_key_file, base / "encryption.key", Fernet.generate_key()
    )
    try:
        fernets = [Fernet(sealing.strip())] + [
            Fernet(r.strip()) for r in _files(settings.retired_encryption_key_files)
        ]
    except ValueError:
        raise KeyConfigError("The encryption key is not a Fernet key (32 url-safe base64 bytes).") from None
    return Keys(signing, kid, verifying, mac_kid(mac), mac, macs, MultiFernet(fernets))


@lru_cache
def get_keys() -> Keys:
    return load(get_settings())


def reset() -> None:
    """Forget the loaded keys (after the settings changed: tests, a rotation)."""
    get_keys.cache_clear()
