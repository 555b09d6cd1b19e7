"""A shop service process settles its heap once it is up (``kiosk.shop.service.settle_heap``)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from kiosk.shop.service import settle_heap


class _Node:
    def __init__(self) -> None:
        self.peer: _Node | None = None


@pytest.fixture
def settled() -> Iterator[None]:
    threshold = gc.get_threshold()
    settle_heap()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def _cycle() -> weakref.ref[_Node]:
    first, second = _Node(), _Node()
    first.peer, second.peer = second, first
    return weakref.ref(first)


def test_what_start_up_made_leaves_the_collectors_generations(settled: None) -> None:
    assert gc.get_freeze_count() > 1000  # the modules' objects, at least
    assert sum(gc.get_count()) < 50  # nothing young is left for the next collection to walk


def test_the_youngest_generation_is_collected_less_often(settled: None) -> None:
    assert gc.get_threshold()[0] >= 5000


def test_garbage_made_afterwards_is_still_collected(settled: None) -> None:
    dropped = _cycle()
    assert dropped() is not None  # a cycle: reference counting alone does not free it
    gc.collect()
    assert dropped() is None
