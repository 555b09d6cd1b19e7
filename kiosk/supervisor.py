"""Supervision of the kiosk's long-lived tasks and threads, in the manner of an Erlang supervisor.

Rules it keeps:
- No task dies quietly: an unexpected exception is logged once, with its traceback, under the
  task's name, and the task is started again after a back-off (0.5 s, doubling, at most 30 s; back
  to 0.5 s once a run lasted longer than the failure window).
- A long-lived task that returns has stopped doing its job: that counts as a failure too.
- A task that keeps failing (``max_failures`` within ``window_s``) is not restarted again: the
  supervisor gives up, ``gave_up`` resolves with the reason, and the process exits non-zero so that
  systemd starts a fresh one. A half-dead kiosk that stays up is worse than a restart.
- Threads (device readers) run their loop under ``keep_thread``: the same back-off and counting,
  from the thread, with the verdict delivered to the event loop. A thread's body may end by itself
  (a video file played to its end); only an exception restarts it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["Supervisor", "TaskHealth"]

log = logging.getLogger(__name__)


@dataclass
class TaskHealth:
    """How one supervised task is doing, for the status page and the log."""

    state: str = "running"  # "running", "restarting", "failed", "stopped"
    restarts: int = 0
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "restarts": self.restarts, "last_error": self.last_error}


class Supervisor:
    def __init__(
        self,
        *,
        max_failures: int = 5,
        window_s: float = 600.0,
        first_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self._clock = clock
        self._lock = threading.Lock()
        self._health: dict[str, TaskHealth] = {}
        self._failures: dict[str, deque[float]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gave_up: asyncio.Future[str] | None = None
        self._reason: str | None = None  # why it gave up, kept for a loop that binds later

    # --- asyncio tasks --------------------------------------------------------------------------

    def start(self, name: str, run: Callable[[], Awaitable[Any]]) -> asyncio.Task[None]:
        """Run ``run()`` as the task ``name`` for as long as the supervisor lives (cancel the
        returned task to stop it)."""
        loop = self._bind()
        with self._lock:
            self._health[name] = TaskHealth()
        task = self._tasks[name] = loop.create_task(self._keep(name, run), name=name)
        return task

    async def _keep(self, name: str, run: Callable[[], Awaitable[Any]]) -> None:
        delay = self.first_delay_s
        while True:
            started = self._clock()
            try:
                await run()
                raise RuntimeError("ended by itself")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._clock() - started > self.window_s:
                    delay = self.first_delay_s  # it ran well for a long time: a fresh fault
                if self.failed(name, exc):
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_delay_s)
            with self._lock:
                self._health[name].state = "running"

    async def stop(self) -> None:
        """Cancel every task and wait for them to end."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with self._lock:
            for health in self._health.values():
                if health.state != "failed":
                    health.state = "stopped"

    # --- threads --------------------------------------------------------------------------------

    def keep_thread(
        self,
        name: str,
        body: Callable[[], None],
        *,
        stop: threading.Event,
        on_state: Callable[[str], None] | None = None,
    ) -> None:
        """Run ``body()`` in the calling thread until it returns or ``stop`` is set, restarting it
        after an unexpected exception."""
        with self._lock:
            self._health.setdefault(name, TaskHealth())
        delay = self.first_delay_s
        while not stop.is_set():
            started = self._clock()
            try:
                body()
                return
            except Exception as exc:
                if self._clock() - started > self.window_s:
                    delay = self.first_delay_s
                if on_state is not None:
                    on_state("restarting")
                if self.failed(name, exc):
                    if on_state is not None:
                        on_state("failed")
                    return
            stop.wait(delay)
            delay = min(delay * 2, self.max_delay_s)
            with self._lock:
                self._health[name].state = "running"

    # --- verdicts -------------------------------------------------------------------------------

    def failed(self, name: str, exc: BaseException) -> bool:
        """Record a failure of ``name`` (from any thread); True when the supervisor gives up on it."""
        now = self._clock()
        summary = f"{type(exc).__name__}: {exc}"[:300]
        with self._lock:
            health = self._health.setdefault(name, TaskHealth())
            failures = self._failures.setdefault(name, deque())
            failures.append(now)
            while failures and now - failures[0] > self.window_s:
                failures.popleft()
            health.last_error = summary
            give_up = len(failures) >= self.max_failures
            health.state = "failed" if give_up else "restarting"
            if not give_up:
                health.restarts += 1
        if give_up:
            log.critical(
                "%s failed %d times in %.0f s (%s); giving up so the kiosk restarts",
                name,
                self.max_failures,
                self.window_s,
                summary,
                exc_info=exc,
            )
            self._give_up(f"{name}: {summary}")
        else:
            log.error("%s failed (%s); restarting it", name, summary, exc_info=exc)
        return give_up

    @property
    def gave_up(self) -> asyncio.Future[str]:
        """Resolves with the reason once a task kept failing."""
        self._bind()
        assert self._gave_up is not None
        return self._gave_up

    async def run_until_signalled(self, announce: Callable[[], None] = lambda: None) -> str | None:
        """Wait for SIGTERM or SIGINT (None: a clean stop) or for the supervisor to give up (its reason).

        The one way a serving command (``kiosk run``, ``kiosk shop webhook``) waits: its caller
        exits 0 on a signal and 1 on giving up, so that systemd's ``Restart=on-failure`` acts.
        ``announce`` (the "ready" line) runs once the signals are caught, so that whoever reads the
        line may stop the process at once.
        """
        stop = asyncio.Event()
        loop = self._bind()
        signals = (signal.SIGTERM, signal.SIGINT)
        for signum in signals:
            loop.add_signal_handler(signum, stop.set)
        announce()
        stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        gave_up: asyncio.Future[Any] = self.gave_up
        try:
            await asyncio.wait([stopping, gave_up], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            for signum in signals:
                loop.remove_signal_handler(signum)
        return self.gave_up.result() if self.gave_up.done() else None

    async def serve_until_signalled(self, ready_line: str, ready_stream: TextIO | None = None) -> int:
        """``run_until_signalled`` as a serving command's exit status: ``ready_line`` printed (on
        stderr unless ``ready_stream``), then 0 after SIGTERM or SIGINT, or 1 with the reason on
        stderr once the supervisor gave up (systemd's ``Restart=on-failure`` starts a fresh process)."""
        stream = ready_stream or sys.stderr
        reason = await self.run_until_signalled(lambda: print(ready_line, file=stream, flush=True))
        if reason is None:
            return 0
        print(f"kiosk: stopping, {reason}", file=sys.stderr, flush=True)
        return 1

    def status(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {name: health.to_json() for name, health in self._health.items()}

    def _bind(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._gave_up = self._loop.create_future()
            if self._reason is not None:
                self._gave_up.set_result(self._reason)
        return self._loop

    def _give_up(self, reason: str) -> None:
        with self._lock:
            self._reason = self._reason or reason
        loop, future = self._loop, self._gave_up
        if loop is None or future is None:
            return  # resolved when a loop binds

        def resolve() -> None:
            if not future.done():
                future.set_result(reason)

        if _running_loop() is loop:
            resolve()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(resolve)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
