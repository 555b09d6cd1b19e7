"""The camera's frame readers (kiosk/devices/scanner/frames.py): Motion-JPEG files written by
OpenCV and by hand (damaged, with thumbnails, not JPEG at all), and V4L2 against a modelled UVC
driver that behaves as real ones do, failures included: it substitutes formats and sizes, refuses a
frame rate, has no frame ready, delivers faster than it is read, marks a frame damaged, and is
unplugged mid-stream. Its readiness is a real pipe, so ``select`` is exercised."""

from __future__ import annotations

import ctypes
import errno
import io
import mmap
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from kiosk.devices.scanner import frames
from kiosk.devices.scanner.frames import CameraGone, CameraUnavailable, MjpegFileReader, V4l2Reader, fourcc, jpeg_frames


def _jpeg(gray: np.ndarray, **save: object) -> bytes:
    out = io.BytesIO()
    Image.fromarray(gray).save(out, "JPEG", quality=90, **save)
    return out.getvalue()


def _picture(seed: int, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8), (0, 0), 2)


def _play(reader: MjpegFileReader) -> list[Image.Image]:
    played = []
    with pytest.raises(CameraGone):
        while True:
            frame = reader.read(1.0)
            if frame is not None:
                played.append(frame)
    return played


def test_an_mjpg_avi_from_opencv_plays_frame_for_frame(tmp_path: Path) -> None:
    video = tmp_path / "camera.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 15, (64, 48))
    pictures = [_picture(seed) for seed in range(12)]
    for picture in pictures:
        writer.write(cv2.cvtColor(picture, cv2.COLOR_GRAY2BGR))
    writer.release()
    reader = MjpegFileReader(video, fps=1000)
    played = _play(reader)
    reader.close()
    reader.close()  # twice is harmless
    capture = cv2.VideoCapture(str(video))
    assert len(played) == 12 and reader.resolution == (64, 48)
    for frame in played:
        ok, theirs = capture.read()
        assert ok and frame.mode == "L"
        assert np.abs(np.asarray(frame).astype(int) - cv2.cvtColor(theirs, cv2.COLOR_BGR2GRAY).astype(int)).max() <= 3


def test_a_raw_stream_with_thumbnails_damage_and_garbage_between_frames(tmp_path: Path) -> None:
    exif_with_thumbnail = b"Exif\x00\x00" + b"\x00" * 8 + _jpeg(_picture(99, (16, 12)))  # an SOI..EOI inside APP1
    good = [_jpeg(_picture(seed)) for seed in range(4)]
    with_thumbnail = (
        good[1][:2]
        + b"\xff\xe1"
        + (len(exif_with_thumbnail) + 2).to_bytes(2, "big")
        + exif_with_thumbnail
        + good[1][2:]
    )
    damaged = good[2][: len(good[2]) // 2] + b"\xff\xd9"  # cut short: the picture data ends early
    stream = (
        b"junk\xff\x00" + good[0] + b"\xff\xd8\xff" + with_thumbnail + damaged + b"\x00" * 50 + good[3] + good[0][:100]
    )
    assert [len(f) for f in jpeg_frames(io.BytesIO(stream))][:2] == [len(good[0]), len(with_thumbnail)]
    path = tmp_path / "stream.mjpeg"
    path.write_bytes(stream)
    reader = MjpegFileReader(path, fps=1000)
    played = _play(reader)
    expected = [np.asarray(Image.open(io.BytesIO(g)).convert("L")) for g in (good[0], good[1], good[3])]
    kept = [np.asarray(p) for p in played if p.size == (64, 48)]
    assert any(np.array_equal(kept[0], e) for e in expected[:1])
    assert sum(any(np.abs(k.astype(int) - e.astype(int)).max() <= 1 for e in expected) for k in kept) >= 3


def test_a_frame_of_a_huge_picture_is_skipped_not_decoded(tmp_path: Path) -> None:
    """A real JPEG of 5000x4000 (flat, so a small file): under Pillow's own bomb limit, over ours."""
    huge = _jpeg(np.full((4000, 5000), 128, np.uint8))
    path = tmp_path / "stream.mjpeg"
    path.write_bytes(huge + _jpeg(_picture(6)))
    reader = MjpegFileReader(path, fps=1000)
    assert reader.resolution == (64, 48) and reader.frames_skipped == 1


@pytest.mark.parametrize(
    "content", [b"", b"hello, this is not a video\n" * 100, b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000)]
)
def test_a_file_that_is_not_motion_jpeg_is_refused_with_a_reason(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "camera.mp4"
    path.write_bytes(content)
    with pytest.raises(CameraUnavailable, match="Motion-JPEG"):
        MjpegFileReader(path, fps=15)


def test_a_missing_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(CameraUnavailable, match="cannot open"):
        frames.open_frames(str(tmp_path / "none.avi"), size=(64, 48), fps=15)


def test_reading_frames_loads_neither_opencv_nor_numpy(tmp_path: Path) -> None:
    path = tmp_path / "stream.mjpeg"
    path.write_bytes(_jpeg(_picture(1)) * 3)
    probe = (
        "import sys; from kiosk.devices.scanner.frames import open_frames; "
        f"r = open_frames({str(path)!r}, size=(64, 48), fps=1000); print(r.read(1.0).size); "
        "print(sorted({'cv2', 'numpy'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:2] == ["(64, 48)", "[]"]


# --- V4L2 against a modelled device -------------------------------------------------------------


class ModelledUvc:
    """A UVC webcam's driver as the kernel shows it: two formats (YUYV, MJPG; no GREY), sizes it
    rounds to its own, frames that arrive when ``deliver`` is called, and an unplug."""

    SIZES = ((640, 480), (1280, 720))

    def __init__(self, formats: tuple[str, ...] = ("YUYV", "MJPG"), *, rate_settable: bool = False) -> None:
        self.formats = formats
        self.rate_settable = rate_settable
        self.streaming = False
        self.unplugged = False
        self.closed = 0
        self._ready_r, self._ready_w = os.pipe()
        self.width, self.height, self.pixelformat = 640, 480, fourcc(formats[0])
        self.buffers: list[mmap.mmap] = []
        self.queued: list[int] = []
        self.done: list[tuple[int, int, int]] = []  # index, bytes used, flags
        self.sequence = 0

    # _Kernel
    def open(self, path: str) -> int:
        return self._ready_r

    def close(self, fd: int) -> None:
        self.closed += 1
        os.close(self._ready_r)
        os.close(self._ready_w)

    def wait_readable(self, fd: int, timeout_s: float) -> bool:
        import select

        return bool(select.select([fd], [], [], timeout_s)[0])

    def mmap(self, fd: int, length: int, offset: int) -> mmap.mmap:
        return self.buffers[offset // 4096]

    def ioctl(self, fd: int, request: int, argument: ctypes.Structure | ctypes.c_int) -> None:
        if self.unplugged and request != frames.VIDIOC_STREAMOFF:
            raise OSError(errno.ENODEV, "No such device")
        if request == frames.VIDIOC_QUERYCAP:
            argument.capabilities = 0x1 | 0x04000000 | 0x80000000
            argument.device_caps = 0x1 | 0x04000000
        elif request == frames.VIDIOC_S_FMT:
            pix = argument.fmt.pix
            if pix.pixelformat not in {fourcc(f) for f in self.formats}:
                pix.pixelformat = fourcc(self.formats[0])  # drivers substitute, they do not refuse
            width, height = min(self.SIZES, key=lambda s: abs(s[0] - pix.width) + abs(s[1] - pix.height))
            pix.width, pix.height = width, height
            pix.bytesperline = width * 2 if pix.pixelformat == fourcc("YUYV") else 0
            self.width, self.height, self.pixelformat = width, height, pix.pixelformat
        elif request == frames.VIDIOC_S_PARM:
            if not self.rate_settable:
                raise OSError(errno.EINVAL, "Invalid argument")
        elif request == frames.VIDIOC_REQBUFS:
            argument.count = max(argument.count, 2)
            self.buffers = [mmap.mmap(-1, self.width * self.height * 2) for _ in range(argument.count)]
        elif request == frames.VIDIOC_QUERYBUF:
            argument.length, argument.m.offset = len(self.buffers[argument.index]), argument.index * 4096
        elif request == frames.VIDIOC_QBUF:
            assert argument.index not in self.queued, "a buffer queued twice"
            self.queued.append(argument.index)
        elif request == frames.VIDIOC_DQBUF:
            if not self.done:
                raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
            index, used, flags = self.done.pop(0)
            os.read(self._ready_r, 1)
            argument.index, argument.bytesused, argument.flags = index, used, flags
        elif request == frames.VIDIOC_STREAMON:
            self.streaming = True
        elif request == frames.VIDIOC_STREAMOFF:
            self.streaming = False

    # the camera's side
    def deliver(self, gray: np.ndarray, *, damaged: bool = False, payload: bytes | None = None) -> bool:
        """One frame into the next queued buffer; False when the reader holds every buffer (the
        frame is dropped, as a driver drops it)."""
        if not self.queued:
            return False
        index = self.queued.pop(0)
        if payload is None and self.pixelformat == fourcc("YUYV"):
            payload = np.stack([gray, np.full_like(gray, 128)], axis=2).tobytes()  # Y, then U or V
        elif payload is None:
            payload = _jpeg(gray)
        self.buffers[index][: len(payload)] = payload
        self.done.append((index, len(payload), 0x40 if damaged else 0))
        os.write(self._ready_w, b"x")
        return True


def _gray(model: ModelledUvc, seed: int) -> np.ndarray:
    return _picture(seed, (model.width, model.height))


@pytest.mark.parametrize("formats", [("YUYV", "MJPG"), ("MJPG",)])
def test_v4l2_frames_in_the_format_and_size_the_driver_chose(formats: tuple[str, ...]) -> None:
    model = ModelledUvc(formats)
    reader = V4l2Reader("/dev/video0", size=(1200, 700), fps=15, kernel=model)  # rounded to 1280x720
    assert reader.resolution == (1280, 720) and model.streaming
    assert reader.read(0.05) is None  # nothing delivered yet: EAGAIN is no frame, not an error
    picture = _gray(model, 3)
    model.deliver(picture)
    frame = reader.read(1.0)
    assert frame is not None and frame.size == (1280, 720) and frame.mode == "L"
    difference = np.abs(np.asarray(frame).astype(int) - picture.astype(int)).max()
    assert difference == 0 if formats[0] == "YUYV" else difference <= 12
    reader.close()
    reader.close()
    assert model.closed == 1 and not model.streaming


def test_v4l2_frames_waiting_are_drained_to_the_newest() -> None:
    model = ModelledUvc()
    reader = V4l2Reader("/dev/video0", size=(640, 480), fps=15, kernel=model)
    pictures = [_gray(model, seed) for seed in range(3)]
    delivered = [model.deliver(p) for p in pictures]
    assert delivered == [True, True, False]  # two buffers: the third frame has nowhere to go
    frame = reader.read(1.0)
    assert frame is not None and np.array_equal(np.asarray(frame), pictures[1])  # the newer, not the first
    assert sorted(model.queued) == [0, 1]  # both buffers handed back to the driver
    model.deliver(pictures[2])
    assert np.array_equal(np.asarray(reader.read(1.0)), pictures[2])
    reader.close()


def test_v4l2_damaged_frames_are_skipped_and_counted() -> None:
    model = ModelledUvc(("MJPG",))
    reader = V4l2Reader("/dev/video0", size=(640, 480), fps=15, kernel=model)
    model.deliver(_gray(model, 1), payload=b"\xff\xd8\xff\xdb\x00\x43" + b"\x01" * 40)  # a JPEG cut short
    assert reader.read(1.0) is None
    model.deliver(_gray(model, 2), damaged=True)  # the driver's own error flag
    assert reader.read(1.0) is None
    model.deliver(_gray(model, 3))
    assert reader.read(1.0) is not None
    assert reader.frames_skipped == 2
    reader.close()


def test_v4l2_unplugged_mid_stream_is_gone_and_closes_cleanly() -> None:
    model = ModelledUvc()
    reader = V4l2Reader("/dev/video0", size=(640, 480), fps=15, kernel=model)
    model.deliver(_gray(model, 1))
    model.unplugged = True
    with pytest.raises(CameraGone):
        reader.read(1.0)
    reader.close()
    assert model.closed == 1


def test_v4l2_a_device_without_a_format_we_read_is_unavailable_and_let_go() -> None:
    model = ModelledUvc(("H264",))
    with pytest.raises(CameraUnavailable, match="pixel formats"):
        V4l2Reader("/dev/video0", size=(640, 480), fps=15, kernel=model)
    assert model.closed == 1


def test_v4l2_a_device_that_cannot_be_opened_is_unavailable() -> None:
    with pytest.raises(CameraUnavailable, match="cannot open"):
        V4l2Reader("/dev/video-none", size=(640, 480), fps=15)
