"""The pieces of a full verify that stand on their own: the event MAC as the walk computes
it, and the buckets of proposal id the cross-check is split into."""

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ulid import ULID

from backend.audit import cross_check
from backend.audit.verification import _mac_hex, _mac_states


@pytest.mark.parametrize("length", [1, 16, 32, 63, 64, 65, 200])
def test_the_walks_mac_is_hmac_sha256(length: int) -> None:
    key = bytes(range(256))[:length] if length <= 256 else b"k" * length
    for message in (b"", b"a", hashlib.sha256(b"event").hexdigest().encode()):
        assert _mac_hex(_mac_states(key), message) == hmac.new(key, message, hashlib.sha256).hexdigest()


def test_a_different_key_gives_a_different_mac() -> None:
    message = b"head:42:abc"
    assert _mac_hex(_mac_states(b"k" * 32), message) != _mac_hex(_mac_states(b"j" * 32), message)


@given(st.lists(st.text(min_size=0, max_size=30), max_size=50), st.integers(min_value=1, max_value=9))
def test_buckets_cover_every_id_once(ids: list[str], buckets: int) -> None:
    """Whatever the ids (ULIDs or not), each lands in exactly one bucket, and the split keeps
    every fact, in the walk's order."""
    # Proposals created over a few minutes, as a real trail's are.
    real = sorted(str(ULID.from_timestamp(1_700_000_000 + 9.7 * i)) for i in range(20))
    bounds = cross_check.bucket_bounds(real[0], real[-1], buckets)
    assert len(bounds) == buckets and bounds[0][0] is None and bounds[-1][1] is None
    facts = {pid: [0, None, None, None, None] for pid in [*ids, *real]}
    parts = cross_check.split(facts, bounds)
    assert sum(len(p) for p in parts) == len(facts)
    for part, (low, high) in zip(parts, bounds, strict=True):
        assert all((low is None or pid >= low) and (high is None or pid < high) for pid in part)
        assert list(part) == [pid for pid in facts if pid in part]


def test_ids_that_are_not_ulids_make_one_bucket() -> None:
    assert cross_check.bucket_bounds("proposal-1", "proposal-9", 4) == [(None, None)]
    assert cross_check.bucket_bounds(None, None, 4) == [(None, None)]


def test_the_first_discrepancy_is_the_first_a_single_pass_would_meet() -> None:
    """Rows are checked proposals first, then decisions, then executions; within a kind the
    lowest key comes first, whichever bucket found it."""
    found: list[cross_check.Found | None] = [
        (1, "dec_b", "decision b", "decision:dec_b"),
        None,
        (0, "prp_z", "proposal z", "proposal:prp_z"),
        (0, "prp_c", "proposal c", "proposal:prp_c"),
    ]
    first = cross_check.first_of(found)
    assert first is not None and first.first_bad == "proposal:prp_c"
    assert cross_check.first_of([None, None]) is None
