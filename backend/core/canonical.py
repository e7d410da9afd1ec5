"""Canonical JSON: the one byte form that hashes and signatures are computed over.

Keys sorted, separators ``,`` and ``:``, UTF-8, no ASCII escaping; the SDK
(``signoff/receipts.py``) computes the same bytes, so an executor can check a payload
against a receipt's ``payload_sha256`` without the server.
"""

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()
