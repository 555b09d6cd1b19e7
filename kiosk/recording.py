"""Writes what each scan produced into a folder: the screen, the print job, its preview, the result.

For the k-th scan: ``NNN-screen.png``, ``NNN-result.json`` and, when a voucher was printed,
``NNN-print.bin`` (the exact ESC/POS bytes) and ``NNN-print.png`` (the paper, read back from those
bytes by the simulated printer).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kiosk.app import ScanReport
from kiosk.presentation.paper import paper_width_px
from kiosk.sim.escpos_reader import parse_escpos, render_paper_png
from kiosk.whole_files import write_whole

__all__ = ["Recorder"]


class Recorder:
    def __init__(self, directory: Path, *, profile: str = "TM-T20II") -> None:
        self.directory = directory
        self.profile = profile
        self.count = 0
        directory.mkdir(parents=True, exist_ok=True)

    def __call__(self, report: ScanReport) -> dict[str, Any]:
        """Write the files for one report; return the result document."""
        self.count += 1
        stem = self.directory / f"{self.count:03d}"
        if report.screen_png is not None:
            Path(f"{stem}-screen.png").write_bytes(report.screen_png)
        if report.print_bytes is not None:
            Path(f"{stem}-print.bin").write_bytes(report.print_bytes)
            job = parse_escpos(report.print_bytes, self.profile)
            render_paper_png(job, paper_width_px(self.profile)).save(f"{stem}-print.png")
        doc = report.to_json()
        # Last and whole: a reader waiting for the result (a test, a script) finds the other files
        # written, and never an empty or half-written document.
        write_whole(Path(f"{stem}-result.json"), (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode())
        return doc
