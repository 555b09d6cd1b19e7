"""A printer reached as a file: a character device such as ``/dev/usb/lp0``, or a plain file.

Jobs are written whole, one at a time, so two vouchers never interleave.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from kiosk.presentation.paper import render_paper
from kiosk.presentation.view import VoucherView

__all__ = ["FilePrinter"]


class FilePrinter:
    def __init__(self, path: Path, profile: str = "TM-T20II") -> None:
        self.path = path
        self.profile = profile

    async def print_voucher(self, view: VoucherView) -> bytes:
        """Lay out and send one voucher; returns the bytes sent."""
        return await asyncio.to_thread(self._print, view)

    def _print(self, view: VoucherView) -> bytes:
        job = render_paper(view, self.profile)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view_of_job = memoryview(job)
            while view_of_job:
                view_of_job = view_of_job[os.write(fd, view_of_job):]
        finally:
            os.close(fd)
        return job
