"""systemd's notify protocol (sd_notify(3)), written here: one datagram of ``NAME=value`` lines to
the socket named by ``NOTIFY_SOCKET``, so no library is needed.

The watchdog pings (``WATCHDOG=1``) only while every liveness probe answers in time: the flow loop
(a probe event put through its queue and answered), the offline service and the page server. A
kiosk whose flow is wedged stops pinging, and systemd restarts it (``WatchdogSec=`` and
``Restart=on-watchdog``/``on-failure`` in hardware/systemd/rezip-kiosk.service). A kiosk whose
whole event loop is stuck stops pinging too: the pings come from that loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping

__all__ = ["Notifier", "Watchdog", "Probe", "watchdog_interval_s", "page_server_probe"]

log = logging.getLogger(__name__)

#: A liveness probe: returns once the part it asks has answered; raises (or never returns) if not.
Probe = Callable[[], Awaitable[object]]


class Notifier:
    """Sends state to systemd; does nothing when the kiosk does not run under it (no NOTIFY_SOCKET)."""

    def __init__(self, address: str | None) -> None:
        self.address = address or None
        self._socket: socket.socket | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        return cls(environ.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, **fields: str) -> bool:
        """``notify(READY="1", STATUS="idle")``; True when sent. A value's line breaks and control
        characters become spaces (each line of the datagram is one assignment)."""
        if self.address is None:
            return False
        payload = "\n".join(f"{name}={_one_line(value)}" for name, value in fields.items()).encode("utf-8")
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address  # abstract namespace
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._socket.setblocking(False)
            self._socket.sendto(payload, target)
        except OSError as exc:  # systemd gone or restarting: the next notification tries again
            log.warning("could not notify systemd at %s: %s", self.address, exc.strerror or exc)
            self.close()
            return False
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval_s(environ: Mapping[str, str] = os.environ) -> float | None:
    """How often to ping: half of ``WATCHDOG_USEC`` (as sd_watchdog_enabled advises), when the
    watchdog is on and meant for this process (``WATCHDOG_PID``, when set, is ours)."""
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000


class Watchdog:
    """Every ``interval_s``: ask each probe; ping and say the status line when all answered."""

    def __init__(
        self,
        notifier: Notifier,
        probes: Mapping[str, Probe],
        *,
        interval_s: float,
        probe_timeout_s: float,
        status: Callable[[], str],
    ) -> None:
        self.notifier = notifier
        self.probes = dict(probes)
        self.interval_s = interval_s
        self.probe_timeout_s = min(probe_timeout_s, interval_s * 0.9)
        self.status = status
        #: Names of the probes that did not answer the last round (empty while all is well).
        self.failing: tuple[str, ...] = ()

    async def check(self) -> tuple[str, ...]:
        """Ask every probe at once; the names of those that did not answer in time."""
        names = list(self.probes)
        results = await asyncio.gather(
            *(asyncio.wait_for(self.probes[name](), self.probe_timeout_s) for name in names), return_exceptions=True
        )
        return tuple(name for name, result in zip(names, results, strict=True) if isinstance(result, BaseException))

    async def run(self) -> None:
        """Until cancelled (a supervised task)."""
        while True:
            failing = await self.check()
            if failing != self.failing:
                if failing:
                    log.error("not answering: %s; the systemd watchdog is not pinged", ", ".join(failing))
                else:
                    log.warning("every liveness probe answers again; pinging the systemd watchdog")
                self.failing = failing
            if failing:
                self.notifier.notify(STATUS=f"not answering: {', '.join(failing)}")
            else:
                self.notifier.notify(WATCHDOG="1", STATUS=self.status())
            await asyncio.sleep(self.interval_s)


def page_server_probe(host: str, port: Callable[[], int]) -> Probe:
    """A real request to the page server (its stylesheet, served from memory): answered only while
    its listener accepts and its handlers run."""
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    shown = f"[{target}]" if ":" in target else target

    async def probe() -> None:
        reader, writer = await asyncio.open_connection(target, port())
        try:
            writer.write(
                f"GET /static/kiosk.css HTTP/1.1\r\nHost: {shown}:{port()}\r\nConnection: close\r\n\r\n".encode("ascii")
            )
            await writer.drain()
            status = await reader.readline()
        finally:
            writer.close()
        if not status.startswith(b"HTTP/1.1 200"):
            raise ConnectionError(f"the page server answered {status[:40]!r}")

    return probe


def _one_line(value: str) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in value)[:400]
