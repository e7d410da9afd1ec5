"""Canonical JSON: the one byte form that payload hashes (views, stale-view checks,
receipts) are computed over, so two parties hashing the same payload agree."""

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """Keys sorted, separators ``,`` and ``:``, UTF-8, no ASCII escaping."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_hex(value: Any) -> str:
    """Hex SHA-256 of ``value``'s canonical JSON."""
    return hashlib.sha256(canonical_json(value)).hexdigest()
