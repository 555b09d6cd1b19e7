"""A camera as a scanner: OpenCV capture, zxing-cpp decoding, one scan per presented code.

Capture runs in its own thread and keeps only the newest frame; decoding runs in another and always
takes the newest, so when decoding falls behind, frames are dropped, never queued (a customer's
code is on screen for many frames). The same code across consecutive frames counts once through
the scan filter's debounce. A camera that fails to open or stops delivering frames is reopened.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from kiosk.devices.scanner.image_decoder import ImageDecoder
from kiosk.devices.scanner.scan_filter import ScanFilter
from kiosk.supervisor import Supervisor

__all__ = ["CameraScanSource"]

log = logging.getLogger(__name__)


class CameraScanSource:
    def __init__(
        self,
        device: str,
        *,
        size: tuple[int, int] = (1280, 720),
        fps: int = 15,
        scan_filter: ScanFilter | None = None,
        reopen_interval_s: float = 1.0,
        loop_file: bool = False,
    ) -> None:
        self.device = device
        self.size = size
        self.fps = fps
        self.scan_filter = scan_filter or ScanFilter()
        self.reopen_interval_s = reopen_interval_s
        self.loop_file = loop_file
        self.state = "closed"
        self.frames_captured = 0
        self.frames_decoded = 0
        self._latest: np.ndarray | None = None
        self._fresh = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def name(self) -> str:
        return f"camera:{self.device}"

    def start(
        self, loop: asyncio.AbstractEventLoop, sink: Callable[[str], None], supervisor: Supervisor | None = None
    ) -> None:
        def deliver(text: str) -> None:
            loop.call_soon_threadsafe(sink, text)

        keeper = supervisor or Supervisor()
        self._threads = [
            threading.Thread(
                target=keeper.keep_thread,
                name=f"{self.name}-{part}",
                daemon=True,
                args=(f"{self.name}-{part}", body),
                kwargs={"stop": self._stop},
            )
            for part, body in (("capture", self._capture), ("decode", lambda: self._decode(deliver)))
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._fresh:
            self._fresh.notify_all()
        for thread in self._threads:
            thread.join(timeout=2)

    def _open(self) -> cv2.VideoCapture:
        source: int | str = int(self.device) if self.device.isdigit() else self.device
        capture = cv2.VideoCapture(source)
        if isinstance(source, int) or source.startswith("/dev/video"):
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
            capture.set(cv2.CAP_PROP_FPS, self.fps)
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the driver should not queue stale frames either
        return capture

    def _capture(self) -> None:
        while not self._stop.is_set():
            capture = self._open()
            if not capture.isOpened():
                if self.state != "missing":
                    log.warning("camera %s not available; retrying", self.device)
                self.state = "missing"
                capture.release()
                self._stop.wait(self.reopen_interval_s)
                continue
            self.state = "open"
            log.info("camera %s open", self.device)
            is_file = not (self.device.isdigit() or self.device.startswith("/dev/"))
            frame_gap = 1.0 / self.fps if is_file else 0.0  # a file plays at the camera's rate
            while not self._stop.is_set():
                ok, frame = capture.read()
                if not ok:
                    if is_file and self.loop_file:
                        capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                        continue
                    break
                self.frames_captured += 1
                with self._fresh:
                    self._latest = frame  # the older frame, if not yet decoded, is dropped
                    self._fresh.notify()
                if frame_gap:
                    time.sleep(frame_gap)
            capture.release()
            if is_file and not self.loop_file:
                self.state = "ended"
                return
            log.warning("camera %s stopped delivering frames; reopening", self.device)
            self.state = "missing"
            self._stop.wait(self.reopen_interval_s)

    def _decode(self, deliver: Callable[[str], None]) -> None:
        decoder = ImageDecoder("frame")
        while not self._stop.is_set():
            with self._fresh:
                while self._latest is None and not self._stop.is_set():
                    self._fresh.wait(0.2)
                frame, self._latest = self._latest, None
            if frame is None:
                continue
            self.frames_decoded += 1
            now = time.monotonic()
            for result in decoder.decode(frame):
                accepted = self.scan_filter.accept(result.text, now)
                if accepted is not None:
                    deliver(accepted)
