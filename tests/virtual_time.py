"""An asyncio event loop on virtual time, for tests of timers and deadlines without real waiting.

The loop's clock moves only when nothing is ready to run: it then jumps to the next timer, so
``asyncio.sleep(5)`` returns at once and timers fire in their order, to the exact virtual instant.
What the code under test measures with ``loop_clock`` is virtual time too, so durations are exact.
Only for code that waits on timers and other tasks, not on sockets or threads (their readiness is
polled without waiting, and virtual time would run ahead of them).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_in_virtual_time", "loop_clock"]

T = TypeVar("T")


class _Selector(selectors.DefaultSelector):  # type: ignore[misc, valid-type]
    """Polls without waiting; a wait that would time out advances the loop's clock instead."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if not ready:
            if timeout is None:
                raise RuntimeError("the virtual-time loop would wait forever: nothing scheduled")
            self.now += max(timeout, 0.0)
        return ready


class _VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._virtual = _Selector()
        super().__init__(self._virtual)

    def time(self) -> float:
        return self._virtual.now


def run_in_virtual_time(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on a fresh virtual-time loop."""
    loop = _VirtualTimeLoop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coroutine)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def loop_clock() -> float:
    """The running loop's clock (virtual under ``run_in_virtual_time``), for a component's ``clock``."""
    return asyncio.get_running_loop().time()
