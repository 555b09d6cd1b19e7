"""A screen that renders each frame to PNG: for the demo, for tests and for headless kiosks."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from kiosk.presentation.screen_png import SCREEN_SIZE, render_screen_png
from kiosk.presentation.view import ScreenView

__all__ = ["PngScreen"]


class PngScreen:
    """Renders frames off the event loop; with ``directory`` set, keeps ``screen.png`` current."""

    def __init__(self, directory: Path | None = None, size: tuple[int, int] = SCREEN_SIZE) -> None:
        self.directory = directory
        self.size = size
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    async def show(self, view: ScreenView) -> bytes:
        return await asyncio.to_thread(self._render, view)

    def _render(self, view: ScreenView) -> bytes:
        frame = render_screen_png(view, self.size)
        if self.directory is not None:
            target = self.directory / "screen.png"
            partial = target.with_suffix(".png.partial")
            partial.write_bytes(frame)
            os.replace(partial, target)  # a viewer never sees half a frame
        return frame
