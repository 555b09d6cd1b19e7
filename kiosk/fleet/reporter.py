"""The health reporter: a task of its own, never on the scan path.

Every ``interval_s``, and whenever a device changes state (sampled from the devices' in-memory state
every ``check_s``, so a printer running out of paper is reported within seconds), a report is put on
a bounded queue; the queue is drained to the backend in batches. While the backend is away the
reports wait; beyond ``queue_size`` the oldest are dropped and the next report says how many.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any

import httpx

from kiosk.core.instants import iso_z
from kiosk.fleet.health_client import MAX_BATCH, HealthReportsClient, ReportsRefused

__all__ = ["HealthReporter"]

log = logging.getLogger(__name__)


class HealthReporter:
    def __init__(
        self,
        client: HealthReportsClient,
        document: Callable[[], dict[str, Any]],
        devices: Callable[[], Hashable],
        *,
        interval_s: float = 300.0,
        queue_size: int = 50,
        check_s: float = 2.0,
        retry_s: float = 30.0,
    ) -> None:
        """``document()`` is the status document to send (``Fleet.status_document``); ``devices()``
        the devices' state as a comparable value (cheap: no I/O)."""
        self.client = client
        self.document = document
        self.devices = devices
        self.interval_s = interval_s
        self.check_s = min(check_s, interval_s)
        self.retry_s = retry_s
        self.queue: deque[dict[str, Any]] = deque()
        self.queue_size = queue_size
        #: Reports dropped since the last one the backend accepted (the next report carries it).
        self.dropped = 0
        self.sent = 0

    def enqueue(self) -> None:
        """Take a report now; the oldest waiting one gives way when the queue is full."""
        if len(self.queue) >= self.queue_size:
            self.queue.popleft()
            self.dropped += 1
        report = self.document()
        report["sent_at"] = iso_z(datetime.now(UTC))
        report["dropped_reports"] = self.dropped
        self.queue.append(report)

    async def drain(self) -> bool:
        """Send what waits, oldest first; False when the backend could not be reached (try later)."""
        while self.queue:
            batch = [self.queue[i] for i in range(min(MAX_BATCH, len(self.queue)))]
            try:
                await self.client.send(batch)
            except ReportsRefused as exc:
                log.warning("%s; %d reports dropped", exc, len(batch))
            except httpx.HTTPError as exc:
                log.info("health reports wait for the backend (%s): %d queued", type(exc).__name__, len(self.queue))
                return False
            else:
                self.sent += len(batch)
                self.dropped = 0
            for _ in batch:
                self.queue.popleft()
        return True

    async def run(self) -> None:
        """Until cancelled (a supervised task)."""
        loop = asyncio.get_running_loop()
        seen: Hashable = object()
        due = retry_at = loop.time()
        while True:
            devices, now = self.devices(), loop.time()
            if devices != seen or now >= due:
                seen, due = devices, now + self.interval_s
                self.enqueue()
            if self.queue and now >= retry_at and not await self.drain():
                retry_at = now + min(self.retry_s, self.interval_s)  # the backend is away: not every check
            await asyncio.sleep(self.check_s)
