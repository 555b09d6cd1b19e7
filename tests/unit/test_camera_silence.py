"""A camera that stays open but sends nothing (a wedged driver, a loose cable that keeps the node)
is closed and opened again after ``_SILENT_S``; before, a blocking read could wait forever."""

from __future__ import annotations

import asyncio
import time

import pytest
from PIL import Image

from kiosk.devices.scanner import camera_source
from kiosk.devices.scanner.camera_source import CameraScanSource
from tests.conftest import wait_until


class _Wedged:
    """Opens, then never delivers a frame (the reader's ``read`` times out, as select does)."""

    resolution = (64, 48)
    frames_damaged = 0

    def __init__(self, log: list[str]) -> None:
        self.log = log
        log.append("open")

    def read(self, timeout_s: float) -> Image.Image | None:
        time.sleep(min(timeout_s, 0.02))
        return None

    def close(self) -> None:
        self.log.append("close")


def test_a_camera_that_sends_nothing_is_reopened(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    monkeypatch.setattr(camera_source, "_SILENT_S", 0.2)
    monkeypatch.setattr(camera_source, "open_frames", lambda device, **_: _Wedged(events))
    source = CameraScanSource("/dev/video0", reopen_interval_s=0.05)

    async def run() -> None:
        source.start(asyncio.get_running_loop(), lambda code: None)
        try:
            await wait_until(lambda: events.count("open") >= 3, timeout_s=10)
        finally:
            source.stop()

    asyncio.run(run())
    assert events[:4] == ["open", "close", "open", "close"]  # each wedged reader let go before the next
