"""A camera as a scanner: V4L2 capture (or a Motion-JPEG file), zxing-cpp decoding, one scan per
presented code.

Capture runs in its own thread and keeps only the newest frame; decoding runs in another and always
takes the newest, so when decoding falls behind, frames are dropped, never queued (a customer's
code is on screen for many frames). Frames arrive in greyscale (the camera's Y plane: 0.9 MB at
1280x720), as the decoder reads them. The same code across consecutive frames counts once through
the scan filter's debounce. A camera that fails to open or stops delivering frames is reopened.

Neither OpenCV nor numpy is loaded (kiosk.devices.scanner.frames, image_decoder): together they
were 40 MB of a 130 MB kiosk (scripts/bench/fleet.py).
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from kiosk.devices.scanner.frames import CameraGone, CameraUnavailable, FrameReader, is_v4l2_device, open_frames
from kiosk.devices.scanner.image_decoder import ImageDecoder
from kiosk.devices.scanner.scan_filter import ScanFilter
from kiosk.devices.scanner.source import ThreadedSource

__all__ = ["CameraScanSource", "CameraFigures"]

log = logging.getLogger(__name__)

#: Frames the delivered rate and the decode times are taken over (a few seconds at 15 fps).
_WINDOW = 60
#: A camera that delivers no frame for this long has stopped: it is closed and opened again.
_SILENT_S = 5.0


@dataclass(frozen=True)
class CameraFigures:
    """How the camera is doing, for the status page and the log: what it delivers and what decoding
    keeps up with. Times are over the last ``_WINDOW`` frames; None before there is any."""

    resolution: tuple[int, int] | None  # width, height of the frames delivered
    fps_delivered: float | None
    decode_ms_median: float | None
    decode_ms_p95: float | None
    frames_captured: int
    frames_decoded: int
    frames_dropped: int  # captured but replaced by a newer frame before decoding took them
    frames_damaged: int  # skipped: the driver's error flag, short, of another size, a JPEG that does not decode

    def to_json(self) -> dict[str, Any]:
        return {
            "resolution": list(self.resolution) if self.resolution else None,
            "fps_delivered": self.fps_delivered,
            "decode_ms_median": self.decode_ms_median,
            "decode_ms_p95": self.decode_ms_p95,
            "frames_captured": self.frames_captured,
            "frames_decoded": self.frames_decoded,
            "frames_dropped": self.frames_dropped,
            "frames_damaged": self.frames_damaged,
        }

    def __str__(self) -> str:
        size = "x".join(map(str, self.resolution)) if self.resolution else "none"
        fps = f"{self.fps_delivered:.1f}" if self.fps_delivered is not None else "-"
        median = f"{self.decode_ms_median:.0f}" if self.decode_ms_median is not None else "-"
        p95 = f"{self.decode_ms_p95:.0f}" if self.decode_ms_p95 is not None else "-"
        return (
            f"{size} at {fps} fps, decode median {median} ms p95 {p95} ms, "
            f"{self.frames_decoded} decoded, {self.frames_dropped} dropped, {self.frames_damaged} damaged"
        )


class CameraScanSource(ThreadedSource):
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
        super().__init__(scan_filter)
        self.device = device
        self.size = size
        self.fps = fps
        self.reopen_interval_s = reopen_interval_s
        self.loop_file = loop_file
        self.frames_captured = 0
        self.frames_decoded = 0
        self.frames_dropped = 0
        self.frames_damaged = 0
        self._damaged_by_closed_readers = 0
        self._latest: Image.Image | None = None
        self._fresh = threading.Condition()
        self._resolution: tuple[int, int] | None = None
        self._arrivals: deque[float] = deque(maxlen=_WINDOW)
        self._decode_ms: deque[float] = deque(maxlen=_WINDOW)
        self._figures_logged_at: float | None = None

    def status_figures(self) -> dict[str, Any] | None:
        return self.figures().to_json()

    def figures(self) -> CameraFigures:
        """A snapshot of the camera's figures (safe to call from any thread)."""
        with self._fresh:
            arrivals, decode_ms = list(self._arrivals), sorted(self._decode_ms)
            resolution, captured, decoded, dropped, damaged = (
                self._resolution,
                self.frames_captured,
                self.frames_decoded,
                self.frames_dropped,
                self.frames_damaged,
            )
        span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
        return CameraFigures(
            resolution=resolution,
            fps_delivered=(len(arrivals) - 1) / span if span > 0 else None,
            decode_ms_median=statistics.median(decode_ms) if decode_ms else None,
            decode_ms_p95=decode_ms[min(len(decode_ms) - 1, round(0.95 * (len(decode_ms) - 1)))] if decode_ms else None,
            frames_captured=captured,
            frames_decoded=decoded,
            frames_dropped=dropped,
            frames_damaged=damaged,
        )

    def _note_frame(self, frame: Image.Image, now: float) -> None:
        """Count a captured frame; log the figures a second after the camera starts delivering and
        whenever the resolution changes. Called with ``_fresh`` held."""
        resolution = frame.size
        changed = self._resolution is not None and resolution != self._resolution
        self._resolution = resolution
        self._arrivals.append(now)
        self.frames_captured += 1
        if self._latest is not None:
            self.frames_dropped += 1
        if changed:
            self._figures_logged_at = None
            self._arrivals.clear()
            self._arrivals.append(now)
            log.info("camera %s now delivers %dx%d", self.device, *resolution)
        if self._figures_logged_at is None and now - self._arrivals[0] >= 1.0:
            self._figures_logged_at = now
            log.info("camera %s: %s", self.device, self.figures())  # _fresh is re-entrant

    @property
    def name(self) -> str:
        return f"camera:{self.device}"

    def _threads(self) -> list[tuple[str, Callable[[], None]]]:
        return [(f"{self.name}-capture", self._capture), (f"{self.name}-decode", self._decode)]

    def stop(self) -> None:
        self._stop.set()
        with self._fresh:
            self._fresh.notify_all()
        super().stop()

    def _open(self) -> FrameReader | None:
        try:
            return open_frames(self.device, size=self.size, fps=self.fps)
        except CameraUnavailable as exc:
            if self.state != "missing":
                log.warning("camera %s not available (%s); retrying", self.device, exc)
            self.state = "missing"
            return None

    def _capture(self) -> None:
        while not self._stop.is_set():
            reader = self._open()
            if reader is None:
                self._stop.wait(self.reopen_interval_s)
                continue
            self.state = "open"
            log.info("camera %s open", self.device)
            try:
                self._take_frames(reader)
            except CameraGone as exc:
                is_file = not is_v4l2_device(self.device)
                if is_file and self.loop_file:
                    continue  # from the start again, at once
                if is_file:
                    self.state = "ended"
                    log.info("camera %s: the file has ended", self.device)
                    return
                log.warning("camera %s stopped delivering frames (%s); reopening", self.device, exc)
            finally:
                reader.close()
                with self._fresh:
                    self._damaged_by_closed_readers += reader.frames_damaged
            if self._stop.is_set():
                return
            self.state = "missing"
            self._stop.wait(self.reopen_interval_s)

    def _take_frames(self, reader: FrameReader) -> None:
        """Keep the newest frame for the decoder until told to stop; ``CameraGone`` when the
        camera stops delivering (unplugged, or a frame late by more than ``_SILENT_S``)."""
        last_frame_at = time.monotonic()
        while not self._stop.is_set():
            frame = reader.read(timeout_s=0.25)
            now = time.monotonic()
            with self._fresh:
                self.frames_damaged = self._damaged_by_closed_readers + reader.frames_damaged
            if frame is None:
                if now - last_frame_at >= _SILENT_S:  # damaged frames count as none
                    raise CameraGone(f"no frame for {_SILENT_S:.0f} s")
                continue
            last_frame_at = now
            with self._fresh:
                self._note_frame(frame, now)
                self._latest = frame  # the older frame, if not yet decoded, is dropped
                self._fresh.notify()

    def _decode(self) -> None:
        decoder = ImageDecoder("frame")
        while not self._stop.is_set():
            with self._fresh:
                while self._latest is None and not self._stop.is_set():
                    self._fresh.wait(0.2)
                frame, self._latest = self._latest, None
            if frame is None:
                continue
            now = time.monotonic()
            results = decoder.decode(frame)
            with self._fresh:
                self.frames_decoded += 1
                self._decode_ms.append((time.monotonic() - now) * 1000)
            for result in results:
                self._deliver(result.text, now)
