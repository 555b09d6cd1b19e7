"""The kiosk's printer: vouchers laid out for the configured profile and sent over a
``PrinterConnection``, with the printer's status read before every job and watched in between.

Jobs carry ids (the voucher code): a job that printed is never printed again, however often it is
retried, and two requests for the same job at once share one print. A failed job may be retried;
after a failure the next status poll is reported even if it looks unchanged, so the kiosk learns
when the printer is back. A logo that cannot be drawn is left off the paper, and a voucher whose
layout fails is printed in its plain form (text only): neither is ever a printer failure.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache

from PIL import Image

from kiosk.devices.printer.connection import PrinterConnection, PrintError, PrinterStatus
from kiosk.logos import LogoCache
from kiosk.logs import fingerprint
from kiosk.presentation.paper import render_paper
from kiosk.presentation.view import VoucherView

__all__ = ["EscposPrinter"]

log = logging.getLogger(__name__)

#: A voucher waits at most this long for its shop's logo before printing without it.
LOGO_BUDGET_S = 0.3
_REMEMBERED_JOBS = 1000


class EscposPrinter:
    def __init__(
        self, connection: PrinterConnection, *, logos: LogoCache | None = None, poll_interval_s: float = 2.0
    ) -> None:
        self.connection = connection
        self.logos = logos
        self.poll_interval_s = poll_interval_s
        self.status: PrinterStatus | None = None
        self._printed: OrderedDict[str, bytes] = OrderedDict()
        self._running: dict[str, asyncio.Task[bytes]] = {}
        self._one_at_a_time = asyncio.Lock()
        self._report_next_poll = False

    @property
    def profile(self) -> str:
        return self.connection.profile

    async def print_voucher(self, view: VoucherView, job_id: str) -> bytes:
        """Print a voucher once; returns the bytes sent. Raises ``PrintError`` saying why not."""
        if job_id in self._printed:
            log.info("job %s was printed before; not printing it again", fingerprint(job_id))
            return self._printed[job_id]
        running = self._running.get(job_id)
        if running is None:
            running = asyncio.get_running_loop().create_task(self._print(view, job_id))
            self._running[job_id] = running
            running.add_done_callback(lambda _: self._running.pop(job_id, None))
        return await asyncio.shield(running)

    async def _print(self, view: VoucherView, job_id: str) -> bytes:
        data = await asyncio.to_thread(self._layout, view, await self._logo(view.logo_url))
        async with self._one_at_a_time:
            try:
                status = await asyncio.to_thread(self.connection.status)
                self.status = status
                if not status.ready:
                    raise PrintError(status.state, status.detail)
                await asyncio.to_thread(self.connection.send, data)
            except PrintError:
                self._report_next_poll = True
                raise
        self._printed[job_id] = data
        while len(self._printed) > _REMEMBERED_JOBS:
            self._printed.popitem(last=False)
        log.info("job %s printed (%d bytes)", fingerprint(job_id), len(data))
        return data

    def _layout(self, view: VoucherView, logo: Image.Image | None) -> bytes:
        """The job's bytes: with the logo, else without it, else the plain form."""
        attempts = [(view, logo)] if logo is None else [(view, logo), (view, None)]
        if not view.plain:
            attempts.append((replace(view, plain=True), None))
        for index, (candidate, picture) in enumerate(attempts):
            try:
                return render_paper(candidate, self.profile, picture)
            except Exception:
                if index == len(attempts) - 1:
                    raise
                log.exception(
                    "voucher layout failed (%s); trying again %s",
                    "with its logo" if picture else "in full",
                    "without the logo" if picture else "in its plain form",
                )
        raise AssertionError("unreachable")

    async def monitor(self, on_change: Callable[[PrinterStatus], None]) -> None:
        """Poll the printer's status until cancelled; report each change (and after a failure)."""
        reported: PrinterStatus | None = None
        while True:
            if not self._one_at_a_time.locked():
                status = await asyncio.to_thread(self.connection.status)
                self.status = status
                if reported is None or status.state != reported.state or self._report_next_poll:
                    self._report_next_poll = False
                    reported = status
                    on_change(status)
            await asyncio.sleep(self.poll_interval_s)

    async def _logo(self, url: str | None) -> Image.Image | None:
        if not url or self.logos is None:
            return None
        logo = await self.logos.get(url, LOGO_BUDGET_S)
        if logo is None:
            return None
        try:
            return _decoded(logo.data)
        except Exception as exc:  # the cache checked it; still, a logo is never worth a failed print
            log.warning("logo %s left off the paper: %s", logo.key, type(exc).__name__)
            return None


@lru_cache(maxsize=32)
def _decoded(data: bytes) -> Image.Image:
    """Logos are decoded once per shop, not once per voucher."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.copy()
