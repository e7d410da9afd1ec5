"""Canonical JSON: the one byte form that payload hashes (views, stale-view checks,
receipts) and signatures are computed over, so two parties hashing the same payload agree.

The SDK (``signoff/receipts.py``) computes the same bytes, so an executor can check a
payload against a receipt's ``payload_sha256`` without the server.
"""

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """Keys sorted, separators ``,`` and ``:``, UTF-8, no ASCII escaping."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_hex(value: Any) -> str:
    """Hex SHA-256 of ``value``'s canonical JSON."""
    return hashlib.sha256(canonical_json(value)).hexdigest()
