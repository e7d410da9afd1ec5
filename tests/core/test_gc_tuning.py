"""The API process's cycle collector: start-up objects frozen, young collections rarer."""

import gc
import weakref
from collections.abc import Iterator

import pytest

from backend.core import gc_tuning


@pytest.fixture
def collector_restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tune_freezes_what_exists_and_widens_the_young_generation(collector_restored: None) -> None:
    gc.unfreeze()
    before = gc.get_freeze_count()
    gc_tuning.tune()
    assert gc.get_freeze_count() > before
    assert gc.get_threshold()[0] == gc_tuning.YOUNG_THRESHOLD


def test_garbage_made_after_tuning_is_still_collected(collector_restored: None) -> None:
    gc_tuning.tune()

    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the collector can free it

    ref = weakref.ref(Node())
    gc.collect()
    assert ref() is None
