"""``kiosk shop webhook`` with ``server.workers`` above 1: that many processes serve, on one port.

A delivery costs the service about 1.5 ms of CPU (most of it the ECDSA P-384 verification and
HTTP), so one process answers about 600 a second and a burst of 200 waits for one core while the
others idle (``scripts/bench/shop.py``). Each worker is a whole ``kiosk shop webhook`` of its own
(the same configuration; ``--worker-port`` names the port) listening with ``SO_REUSEPORT``, so the
kernel shares the connections out among them; nothing is shared between them but Voucherify, where
a publication's ``source_id`` already makes a delivery that reached two workers one code. The link
checks' ration and Voucherify's in-flight cap are shared out: each worker takes its part.

This parent only supervises: it starts the workers, prints the ready line once every one of them
is ready, restarts one that dies (``kiosk.supervisor``: back-off, and after repeated deaths it
gives up and exits 1 for systemd), and on SIGTERM stops them all. The first worker starts alone,
so one that cannot (Voucherify unreachable, a campaign RE-ZIP cannot show) says why once and ends
the whole command with its status.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import socket
from collections.abc import Iterator

from kiosk.supervisor import Supervisor

__all__ = ["READY", "WorkerPool", "reserved_port"]

log = logging.getLogger(__name__)

#: How a worker's ready line (on its stdout) begins; the parent's own, on stderr, begins so too.
READY = "kiosk shop webhook ready"

_SIGNALS = (signal.SIGTERM, signal.SIGINT)

#: A worker that is asked to stop and has not within this many seconds is killed.
_STOP_S = 10.0


@contextlib.contextmanager
def reserved_port(host: str, port: int) -> Iterator[int]:
    """The port the workers share: ``port``, once it is known that nothing listens there (a second
    pool would otherwise join this one's ``SO_REUSEPORT`` group and take part of its deliveries:
    ``OSError`` instead); or when it is 0 a free one, held (bound with ``SO_REUSEPORT``, never
    listening) until the workers share it, so that no other program takes it in between."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no listener
        if port:
            holder.bind((host, port))  # EADDRINUSE while anything listens there, a pool included
            holder.close()
            yield port
            return
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((host, 0))
        yield int(holder.getsockname()[1])


class _WorkerEnded(RuntimeError):
    """A worker process ended while it should have been serving."""


class WorkerPool:
    """``count`` workers, each ``command`` (a ``kiosk shop webhook --worker-port``) in a process."""

    def __init__(self, command: list[str], count: int) -> None:
        self.command = command
        self.count = count
        self._processes: dict[int, asyncio.subprocess.Process] = {}

    async def serve(self) -> int:
        """Start the workers, print the ready line on stderr once all are ready (the first worker's,
        with how many serve), serve until SIGTERM or SIGINT (0), a worker that keeps dying (1) or
        one that could not start (its status). A signal while they start stops those started."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in _SIGNALS:
            loop.add_signal_handler(signum, stop.set)
        try:
            starting = asyncio.ensure_future(self._start_all())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not starting.done():
                starting.cancel()
                await asyncio.gather(starting, return_exceptions=True)
                await self._stop_all()
                return 0
            first = starting.result()
        finally:
            for signum in _SIGNALS:
                loop.remove_signal_handler(signum)
        if isinstance(first, int):
            await self._stop_all()
            return first
        supervisor = Supervisor()
        try:
            for index in range(self.count):
                supervisor.start(f"shop worker {index + 1}", functools.partial(self._keep, index))
            return await supervisor.serve_until_signalled(f"{first}; {self.count} worker processes share the port")
        finally:
            await supervisor.stop()
            await self._stop_all()

    async def _start_all(self) -> str | int:
        """Every worker started: the first one's ready line, or the exit status of one that could not
        start. The first starts alone, so a campaign RE-ZIP cannot show is said once, by one worker,
        and the others are never started."""
        first = await self._start(0)
        if isinstance(first, int):
            return first
        others = await asyncio.gather(*(self._start(index) for index in range(1, self.count)))
        failed = [result for result in others if isinstance(result, int)]
        return failed[0] if failed else first

    async def _start(self, index: int) -> str | int:
        """Start worker ``index``: its ready line once it is ready, its exit status when it ended instead."""
        # stdin is a pipe only this parent writes to: when the parent is gone, however it went
        # (SIGKILL too), the worker reads its end and stops (kiosk.cli.shop's worker mode).
        process = await asyncio.create_subprocess_exec(
            *self.command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        self._processes[index] = process
        assert process.stdout is not None
        line = (await process.stdout.readline()).decode("utf-8", "replace").strip()
        if line.startswith(READY):
            return line
        status = await process.wait()
        return status if status > 0 else 1

    async def _keep(self, index: int) -> None:
        """Worker ``index`` while it lives (started again first when it has ended): its end is a
        failure for the supervisor, which restarts it after a back-off."""
        process = self._processes.get(index)
        if process is None or process.returncode is not None:
            started = await self._start(index)
            if isinstance(started, int):
                raise _WorkerEnded(f"worker {index + 1} could not start again (exit {started})")
            process = self._processes[index]
        try:
            status = await process.wait()
        except asyncio.CancelledError:
            await self._stop(process)
            raise
        raise _WorkerEnded(f"worker {index + 1} (pid {process.pid}) ended with status {status}")

    async def _stop_all(self) -> None:
        await asyncio.gather(*(self._stop(process) for process in self._processes.values()))

    @staticmethod
    async def _stop(process: asyncio.subprocess.Process) -> None:
        if process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), _STOP_S)
        except TimeoutError:
            log.error("shop worker (pid %d) did not stop within %.0f s; killed", process.pid, _STOP_S)
            process.kill()
            await process.wait()
