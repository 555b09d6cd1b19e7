"""Where a camera's frames come from, as greyscale PIL images, without OpenCV or numpy.

Two kinds of source answer the same small interface (``FrameReader``), chosen by the configured
device string as before: "0" or a path under /dev/ is a V4L2 camera, read through its mmap
streaming buffers with the standard library only (kiosk/devices/scanner/v4l2.py); anything else
is a Motion-JPEG video file (an MJPG .avi as OpenCV's writer makes it, or a raw .mjpeg stream),
split into its JPEG frames by walking their markers, for the tests, the benchmark and the demo.

Every frame is made greyscale as cheaply as its format allows, because the decoder wants luma
only: GREY as it is, YUYV by taking every second byte, JPEG by letting libjpeg decode the luma
channel alone (PIL's draft mode). A frame that cannot be decoded is skipped and counted; the
reader goes on with the next one. Only an unplugged device or the end of a file stops it.
"""

from __future__ import annotations

import ctypes
import errno
import io
import mmap
import select
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from PIL import Image

from kiosk.devices.scanner import v4l2
from kiosk.devices.scanner.v4l2 import SystemIo, V4l2Io, fourcc, fourcc_text

__all__ = [
    "CameraGone",
    "CameraUnavailable",
    "FrameReader",
    "JpegSplitter",
    "MjpegFileFrames",
    "V4l2Frames",
    "is_v4l2_device",
    "open_frames",
]

#: Pixel formats asked for, best first: greyscale needs no work, YUYV's luma is every second byte,
#: Motion-JPEG needs a decode (but is what most USB cameras give at 1280x720 and above).
PIXEL_FORMATS = ("GREY", "YUYV", "MJPG")

#: Buffers asked of the driver: two, so that it fills one while the reader copies the other;
#: more would only hold older frames.
BUFFERS = 2

#: The errors of a device that has gone for good (unplugged, or the driver gave up on it).
_GONE = frozenset({errno.ENODEV, errno.EIO, errno.ENXIO})

#: The exceptions PIL raises for data that is not a decodable JPEG of a sane size.
_UNDECODABLE = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)

#: A JPEG frame in a file larger than this is taken as damaged (no end marker found): a 4K
#: Motion-JPEG frame is a few MB.
MAX_JPEG_BYTES = 16 * 1024 * 1024

#: The largest frame taken (4096x4096): more is a garbled header, or more memory than a kiosk has.
MAX_FRAME_PIXELS = 4096 * 4096

#: How much of a video file is read at a time.
_CHUNK = 64 * 1024

MOTION_JPEG_FORMATS = "an MJPG .avi (as OpenCV's VideoWriter writes with fourcc MJPG) or a raw .mjpeg stream"


class CameraUnavailable(OSError):
    """The camera or the video file cannot be opened; the message says why. Worth retrying later
    for a device (it may be plugged in), not for a file of the wrong format."""


class CameraGone(OSError):
    """The reader will deliver no more frames: the device was unplugged or the file ended. Close
    it; for a device, open a new reader to try again."""


class FrameReader(Protocol):
    """What a camera source's capture thread reads frames from."""

    @property
    def resolution(self) -> tuple[int, int]:
        """Width and height of the frames delivered (what the driver chose, or the file's)."""
        ...

    @property
    def frames_damaged(self) -> int:
        """Frames skipped because their data could not be decoded (short, garbled, another size)."""
        ...

    def read(self, timeout_s: float) -> Image.Image | None:
        """The newest frame, greyscale (mode "L"), or None when none came within ``timeout_s``.
        Raises CameraGone when the source has stopped for good."""
        ...

    def close(self) -> None:
        """Let go of the device or file; calling it again does nothing."""
        ...


def is_v4l2_device(device: str) -> bool:
    """Whether the configured scanner device names a camera (a V4L2 index or a node under /dev/,
    e.g. /dev/video0 or /dev/v4l/by-id/...) rather than a video file."""
    return device.isdigit() or device.startswith("/dev/")


def open_frames(device: str, *, size: tuple[int, int], fps: int) -> FrameReader:
    """Open the camera or video file ``device`` names. A camera is asked for ``size`` at ``fps``
    (it may choose otherwise: see ``resolution``); a file plays once at its own size at ``fps``
    (the camera source opens it again to loop). Raises CameraUnavailable."""
    if is_v4l2_device(device):
        path = f"/dev/video{device}" if device.isdigit() else device
        return V4l2Frames.open(path, size=size, fps=fps)
    return MjpegFileFrames.open(device, fps=fps)


def luma_from_jpeg(data: bytes, size: tuple[int, int]) -> Image.Image | None:
    """The greyscale image of one JPEG frame of the given size, libjpeg decoding its luma only;
    None when the data is not such a frame (not a JPEG, cut short, garbled, another size)."""
    try:
        image = Image.open(io.BytesIO(data), formats=("JPEG",))
        if image.size != size:
            return None
        image.draft("L", size)  # full scale; greyscale straight from the Y channel
        image.load()
    except _UNDECODABLE:
        return None
    return image if image.mode == "L" else image.convert("L")


# --- V4L2 -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Dequeued:
    index: int
    bytesused: int
    flags: int


class V4l2Frames:
    """A V4L2 capture device streaming into two mmap buffers; ``read`` takes the newest frame."""

    def __init__(self, path: str, io_: V4l2Io, fd: int, pix: v4l2.PixFormat, buffers: list[mmap.mmap]) -> None:
        self.path = path
        self.resolution = (int(pix.width), int(pix.height))
        self.pixel_format = fourcc_text(pix.pixelformat)
        self.frames_damaged = 0
        self._io = io_
        self._fd = fd
        self._buffers = buffers
        row_bytes = self.resolution[0] * (2 if self.pixel_format == "YUYV" else 1)
        self._stride = max(int(pix.bytesperline), row_bytes)  # 0 means "no padding"
        self._closed = False

    @classmethod
    def open(cls, path: str, *, size: tuple[int, int], fps: int, io_: V4l2Io | None = None) -> V4l2Frames:
        """Open ``path``, agree a format and frame rate with the driver and start streaming.
        Raises CameraUnavailable with the reason when it cannot."""
        io_ = io_ or SystemIo()
        try:
            fd = io_.open(path)
        except OSError as exc:
            raise CameraUnavailable(f"camera {path!r}: cannot open: {exc.strerror or exc}") from None
        buffers: list[mmap.mmap] = []
        try:
            _check_capture_device(io_, fd, path)
            pix = _set_format(io_, fd, path, size)
            _set_frame_rate(io_, fd, fps)
            buffers = _map_buffers(io_, fd, path)
            for index in range(len(buffers)):
                io_.ioctl(fd, v4l2.VIDIOC_QBUF, _buffer(index))
            _start_streaming(io_, fd, path, pix)
        except BaseException as exc:
            for buffer in buffers:
                buffer.close()
            io_.close(fd)
            if isinstance(exc, OSError) and not isinstance(exc, CameraUnavailable):
                raise CameraUnavailable(f"camera {path!r}: {exc.strerror or exc}") from None
            raise
        return cls(path, io_, fd, pix, buffers)

    def read(self, timeout_s: float) -> Image.Image | None:
        if self._closed:
            raise CameraGone(f"camera {self.path!r} is closed")
        deadline = time.monotonic() + timeout_s
        while True:
            ready, _, _ = select.select([self._fd], [], [], max(0.0, deadline - time.monotonic()))
            if ready:
                image = self._take_newest()
                if image is not None:
                    return image
            if time.monotonic() >= deadline:
                return None

    def _take_newest(self) -> Image.Image | None:
        """Dequeue every frame that is ready, keep the newest, give the others back to the driver
        at once; copy it out, re-queue it and make it greyscale. None when nothing usable came."""
        newest = self._dequeue()
        if newest is None:
            return None  # readiness without a frame: the driver is allowed that
        while (newer := self._dequeue()) is not None:
            self._queue(newest.index)
            newest = newer
        data = self._buffers[newest.index][: newest.bytesused]
        self._queue(newest.index)
        image = None if newest.flags & v4l2.BUF_FLAG_ERROR else self._to_luma(data)
        if image is None:
            self.frames_damaged += 1
        return image

    def _to_luma(self, data: bytes) -> Image.Image | None:
        width, height = self.resolution
        if self.pixel_format == "MJPG":
            return luma_from_jpeg(data, self.resolution)
        if len(data) < self._stride * height:
            return None  # a frame cut short (lost USB packets)
        raw = data[: self._stride * height]
        if self.pixel_format == "YUYV":
            return Image.frombytes("L", self.resolution, raw[0::2], "raw", "L", self._stride // 2)
        return Image.frombytes("L", self.resolution, raw, "raw", "L", self._stride)

    def _dequeue(self) -> _Dequeued | None:
        buffer = _buffer(0)
        if not self._stream_call(v4l2.VIDIOC_DQBUF, buffer):
            return None
        if buffer.index >= len(self._buffers):
            raise OSError(errno.EPROTO, f"camera {self.path!r}: the driver dequeued unknown buffer {buffer.index}")
        return _Dequeued(int(buffer.index), min(int(buffer.bytesused), len(self._buffers[buffer.index])), buffer.flags)

    def _queue(self, index: int) -> None:
        self._stream_call(v4l2.VIDIOC_QBUF, _buffer(index))

    def _stream_call(self, request: int, buffer: v4l2.Buffer) -> bool:
        """Queue or dequeue a buffer; False when the driver has no frame ready (EAGAIN). Raises
        CameraGone when the device has gone, and any other error as it is."""
        try:
            self._io.ioctl(self._fd, request, buffer)
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                return False
            if exc.errno in _GONE:
                raise CameraGone(exc.errno, f"camera {self.path!r} stopped: {exc.strerror}") from exc
            raise
        return True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._io.ioctl(self._fd, v4l2.VIDIOC_STREAMOFF, ctypes.c_int(v4l2.BUF_TYPE_VIDEO_CAPTURE))
        except OSError as exc:
            if exc.errno not in _GONE:
                raise
        finally:
            for buffer in self._buffers:
                buffer.close()
            self._io.close(self._fd)


def _buffer(index: int) -> v4l2.Buffer:
    return v4l2.Buffer(index=index, type=v4l2.BUF_TYPE_VIDEO_CAPTURE, memory=v4l2.MEMORY_MMAP)


def _check_capture_device(io_: V4l2Io, fd: int, path: str) -> None:
    capability = v4l2.Capability()
    io_.ioctl(fd, v4l2.VIDIOC_QUERYCAP, capability)
    caps = capability.device_caps if capability.capabilities & v4l2.CAP_DEVICE_CAPS else capability.capabilities
    if not caps & v4l2.CAP_VIDEO_CAPTURE:
        raise CameraUnavailable(
            f"camera {path!r} is not a video capture node (a USB camera's second node carries metadata: "
            "use the first, or /dev/v4l/by-id/...-video-index0)"
        )
    if not caps & v4l2.CAP_STREAMING:
        raise CameraUnavailable(f"camera {path!r} cannot stream into mmap buffers")


def _set_format(io_: V4l2Io, fd: int, path: str, size: tuple[int, int]) -> v4l2.PixFormat:
    """Ask for each pixel format in turn at ``size``; the first the driver keeps is taken, at the
    size it rounded to. (A driver substitutes a format it does not offer rather than refusing.)"""
    offered: list[str] = []
    for name in PIXEL_FORMATS:
        format_ = v4l2.Format(type=v4l2.BUF_TYPE_VIDEO_CAPTURE)
        format_.fmt.pix.width, format_.fmt.pix.height = size
        format_.fmt.pix.pixelformat = fourcc(name)
        format_.fmt.pix.field = v4l2.FIELD_ANY
        try:
            io_.ioctl(fd, v4l2.VIDIOC_S_FMT, format_)
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # some drivers refuse a format rather than substitute one
                raise
            continue
        pix: v4l2.PixFormat = format_.fmt.pix
        if pix.pixelformat == fourcc(name):
            if not (0 < pix.width * pix.height <= MAX_FRAME_PIXELS):
                raise CameraUnavailable(f"camera {path!r} chose an impossible size {pix.width}x{pix.height}")
            return pix
        offered.append(fourcc_text(pix.pixelformat))
    gives = f" (it gives {', '.join(sorted(set(offered)))})" if offered else ""
    raise CameraUnavailable(f"camera {path!r} offers none of {', '.join(PIXEL_FORMATS)}{gives}")


def _set_frame_rate(io_: V4l2Io, fd: int, fps: int) -> None:
    parm = v4l2.StreamParm(type=v4l2.BUF_TYPE_VIDEO_CAPTURE)
    parm.parm.capture.timeperframe.numerator = 1
    parm.parm.capture.timeperframe.denominator = fps
    try:
        io_.ioctl(fd, v4l2.VIDIOC_S_PARM, parm)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTTY):  # not every driver sets a frame rate
            raise


def _start_streaming(io_: V4l2Io, fd: int, path: str, pix: v4l2.PixFormat) -> None:
    try:
        io_.ioctl(fd, v4l2.VIDIOC_STREAMON, ctypes.c_int(v4l2.BUF_TYPE_VIDEO_CAPTURE))
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        raise CameraUnavailable(  # uvcvideo: no USB alternate setting has the bandwidth
            f"camera {path!r}: not enough USB bandwidth for {pix.width}x{pix.height} {fourcc_text(pix.pixelformat)} "
            "(another camera on the same bus? a smaller scanner.size, or a camera that sends MJPG, needs less)"
        ) from None


def _map_buffers(io_: V4l2Io, fd: int, path: str) -> list[mmap.mmap]:
    request = v4l2.RequestBuffers(count=BUFFERS, type=v4l2.BUF_TYPE_VIDEO_CAPTURE, memory=v4l2.MEMORY_MMAP)
    io_.ioctl(fd, v4l2.VIDIOC_REQBUFS, request)
    if request.count < 1:
        raise CameraUnavailable(f"camera {path!r} gave no mmap buffers")
    buffers: list[mmap.mmap] = []
    try:
        for index in range(request.count):  # the driver may give more than asked (its minimum)
            buffer = _buffer(index)
            io_.ioctl(fd, v4l2.VIDIOC_QUERYBUF, buffer)
            buffers.append(io_.map(fd, buffer.length, buffer.m.offset))
    except BaseException:
        for mapped in buffers:
            mapped.close()
        raise
    return buffers


# --- Motion-JPEG files ------------------------------------------------------------------------


class JpegSplitter:
    """Cuts a byte stream into whole JPEG images by walking their markers: from SOI, segments whose
    lengths are skipped (so a thumbnail inside an EXIF APP1 segment is passed over), then after
    SOS the entropy-coded data, where FF00 and the restart markers are data and another marker
    ends the scan, up to EOI. Bytes between images (an AVI's chunk headers, its index) are passed
    over. An image that breaks the rules or grows past ``max_bytes`` is counted in ``damaged``
    and the search goes on from just after its start. Pure: fed bytes, returns bytes."""

    def __init__(self, max_bytes: int = MAX_JPEG_BYTES) -> None:
        self.max_bytes = max_bytes
        self.damaged = 0
        self._data = bytearray()  # the current image from its SOI, once found
        self._at = 0  # where the walk has got to in _data
        self._in_image = False
        self._in_scan = False

    def feed(self, chunk: bytes) -> list[bytes]:
        """Take the next bytes of the stream; returns the images they completed."""
        self._data += chunk
        images: list[bytes] = []
        while self._step(images):
            pass
        if self._in_image and len(self._data) > self.max_bytes:
            self._restart_after_damage()
            while self._step(images):
                pass
        return images

    def finish(self) -> None:
        """The stream ended: an image begun but not ended is damaged (the file was cut short)."""
        if self._in_image:
            self.damaged += 1
        self._data.clear()
        self._at, self._in_image, self._in_scan = 0, False, False

    def _step(self, images: list[bytes]) -> bool:
        """Walk as far as one decision; False when more bytes are needed."""
        data = self._data
        if not self._in_image:
            start = data.find(b"\xff\xd8\xff")  # SOI and the first segment's marker
            if start < 0:
                del data[: max(0, len(data) - 2)]  # the last two bytes may begin an SOI
                return False
            del data[:start]
            self._at, self._in_image, self._in_scan = 2, True, False
            return True
        if self._in_scan:
            mark = data.find(b"\xff", self._at)
            if mark < 0 or mark + 1 >= len(data):
                self._at = len(data) if mark < 0 else mark
                return False
            following = data[mark + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                self._at = mark + (1 if following == 0xFF else 2)  # data, a restart, or fill
                return True
            self._at, self._in_scan = mark, False  # a marker: EOI, or the next table or scan
            return True
        if len(data) < self._at + 2:
            return False
        if data[self._at] != 0xFF:
            self._restart_after_damage()
            return True
        marker = data[self._at + 1]
        if marker == 0xFF:  # fill byte before a marker
            self._at += 1
            return True
        if marker == 0xD9:
            images.append(bytes(data[: self._at + 2]))
            del data[: self._at + 2]
            self._at, self._in_image = 0, False
            return True
        if marker in (0x00, 0xD8):
            self._restart_after_damage()
            return True
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            self._at += 2
            return True
        if len(data) < self._at + 4:
            return False
        length = int.from_bytes(data[self._at + 2 : self._at + 4], "big")
        if length < 2:
            self._restart_after_damage()
            return True
        self._at += 2 + length
        self._in_scan = marker == 0xDA
        return True

    def _restart_after_damage(self) -> None:
        self.damaged += 1
        del self._data[:2]  # this image's SOI; look again for the next one from here
        self._at, self._in_image, self._in_scan = 0, False, False


def _avi_is_motion_jpeg(header_list: bytes) -> bool:
    """Whether an AVI's header list (hdrl) describes a Motion-JPEG video stream: its stream header's
    handler or its format's compression is MJPG."""
    at = 0
    while at + 8 <= len(header_list):
        chunk_id, size = header_list[at : at + 4], int.from_bytes(header_list[at + 4 : at + 8], "little")
        body = header_list[at + 8 : at + 8 + size]
        if chunk_id == b"LIST" and _avi_is_motion_jpeg(body[4:]):  # a stream's list (strl)
            return True
        if chunk_id == b"strh" and body[:4] == b"vids" and body[4:8].upper() == b"MJPG":
            return True
        if chunk_id == b"strf" and body[16:20].upper() == b"MJPG":  # BITMAPINFOHEADER's biCompression
            return True
        at += 8 + size + (size & 1)
    return False


def _movi_start(file: BinaryIO, path: str) -> int:
    """Where the frames of a RIFF AVI begin (its movi list), after checking it is Motion-JPEG."""
    file.seek(12)
    motion_jpeg = False
    while len(head := file.read(12)) == 12:
        chunk_id, size, list_type = head[:4], int.from_bytes(head[4:8], "little"), head[8:12]
        if chunk_id == b"LIST" and list_type == b"movi":
            if not motion_jpeg:
                break
            return file.tell()
        if chunk_id == b"LIST" and list_type == b"hdrl" and size <= 1024 * 1024:
            motion_jpeg = _avi_is_motion_jpeg(file.read(size - 4))
            file.seek(size & 1, io.SEEK_CUR)
        else:
            file.seek(size + (size & 1) - 4, io.SEEK_CUR)
    raise CameraUnavailable(
        f"video file {path!r} is an AVI without a Motion-JPEG video: the kiosk reads {MOTION_JPEG_FORMATS}"
    )


class MjpegFileFrames:
    """A Motion-JPEG file played as a camera at ``fps``: read from the disk a chunk at a time, each
    frame decoded when it is due. ``read`` sleeps until then (it is called by a capture thread)."""

    def __init__(
        self,
        path: str,
        file: BinaryIO,
        frames_start: int,
        *,
        fps: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = path
        self._undecodable = 0  # frames the splitter cut but PIL could not decode
        self._file = file
        self._gap = 1.0 / fps
        self._clock = clock
        self._sleep = sleep
        self._splitter = JpegSplitter()
        self._pending: deque[bytes] = deque()
        self._due = 0.0
        self._closed = False
        self._file.seek(frames_start)
        self.resolution = (0, 0)  # the first frame tells
        self._first: Image.Image | None = self._next_image(first=True)
        self.resolution = self._first.size

    @property
    def frames_damaged(self) -> int:
        return self._undecodable + self._splitter.damaged

    @classmethod
    def open(
        cls,
        path: str,
        *,
        fps: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> MjpegFileFrames:
        """Open a video file; raises CameraUnavailable when it cannot be read or is not Motion-JPEG
        with at least one whole frame."""
        try:
            file = open(path, "rb")  # held by the reader until close()
        except OSError as exc:
            raise CameraUnavailable(f"video file {path!r}: {exc.strerror or exc}") from None
        try:
            head = file.read(12)
            if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
                start = _movi_start(file, path)
            elif head[:3] == b"\xff\xd8\xff":
                start = 0
            else:
                raise CameraUnavailable(
                    f"video file {path!r} is not Motion-JPEG: the kiosk reads {MOTION_JPEG_FORMATS}"
                )
            return cls(path, file, start, fps=fps, clock=clock, sleep=sleep)
        except BaseException:
            file.close()
            raise

    def read(self, timeout_s: float) -> Image.Image | None:
        if self._closed:
            raise CameraGone(f"video file {self.path!r} is closed")
        wait = self._due - self._clock()
        if wait > timeout_s:
            self._sleep(max(0.0, timeout_s))
            return None
        if wait > 0:
            self._sleep(wait)
        self._due = max(self._due, self._clock()) + self._gap  # late frames push the next ones
        if self._first is not None:
            image, self._first = self._first, None
            return image
        return self._next_image()

    def _next_image(self, first: bool = False) -> Image.Image:
        """The next decodable frame; CameraGone at the end of the file."""
        while True:
            while not self._pending:
                chunk = self._file.read(_CHUNK)
                if chunk:
                    self._pending.extend(self._splitter.feed(chunk))
                    continue
                self._splitter.finish()
                if first:
                    raise CameraUnavailable(f"video file {self.path!r} has no whole JPEG frame")
                raise CameraGone(f"video file {self.path!r} ended")
            image = self._decode(self._pending.popleft(), first)
            if image is not None:
                return image
            self._undecodable += 1

    def _decode(self, data: bytes, first: bool) -> Image.Image | None:
        """One frame as greyscale; a file's frames all have its first decodable frame's size."""
        if first:
            try:
                size = Image.open(io.BytesIO(data), formats=("JPEG",)).size
            except _UNDECODABLE:
                return None
            return luma_from_jpeg(data, size) if size[0] * size[1] <= MAX_FRAME_PIXELS else None
        return luma_from_jpeg(data, self.resolution)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._file.close()
