"""Where the camera's frames come from, as greyscale Pillow images: a V4L2 device read directly
(ioctl and mmap, no OpenCV), or a Motion-JPEG file (tests, demonstrations, the benchmarks).

V4L2: the device is asked for the configured size in the first pixel format it takes of GREY, YUYV
(its Y bytes are the greyscale picture) and MJPG (decoded by Pillow's libjpeg, luma only), with two
memory-mapped buffers: the newest frame matters, never a queue of stale ones. A driver may round the
size or refuse a frame rate; what it chose is what ``resolution`` says. The layouts below are the
64-bit kernel's (linux-x86_64 and linux-aarch64, the kiosk's machines); ``_Kernel`` is the seam the
tests put a modelled device behind.

Motion-JPEG files: an MJPG ``.avi`` (as a camera's MJPG mode or OpenCV's writer records it) or a
raw ``.mjpeg`` stream. Frames are found by walking the JPEG markers (segment lengths up to the scan,
then the entropy-coded data, where ``FF 00`` and the restart markers are data), so a thumbnail
inside a frame's EXIF block is not taken for the frame's end, and the file is read as it plays,
never whole. A file plays at the configured rate.
"""

from __future__ import annotations

import ctypes
import errno
import io
import mmap
import os
import select
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from PIL import Image, UnidentifiedImageError

__all__ = ["CameraGone", "CameraUnavailable", "FrameReader", "open_frames", "jpeg_frames"]


class CameraUnavailable(OSError):
    """The camera (or file) cannot be opened; the message says why."""


class CameraGone(OSError):
    """The camera stopped delivering for good (unplugged), or the file has ended."""


class FrameReader(Protocol):
    is_file: bool
    #: Width and height of the frames delivered (what the driver chose, not what was asked).
    resolution: tuple[int, int]
    #: Frames that arrived damaged and were skipped.
    frames_skipped: int

    def read(self, timeout_s: float) -> Image.Image | None:
        """The next frame in greyscale ("L"), or None when none came within ``timeout_s``;
        ``CameraGone`` when none will come."""

    def close(self) -> None:
        """Stop and let go of the device or file; closing twice is harmless."""


def open_frames(device: str, *, size: tuple[int, int], fps: int) -> FrameReader:
    """A reader for ``device``: "0" or "/dev/videoN" is a V4L2 device, anything else a file."""
    if device.isdigit():
        return V4l2Reader(f"/dev/video{device}", size=size, fps=fps)
    if device.startswith("/dev/"):
        return V4l2Reader(device, size=size, fps=fps)
    return MjpegFileReader(Path(device), fps=fps)


# --- Motion-JPEG files ------------------------------------------------------------------------

_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
#: Markers without a length: TEM, the restart markers, SOI and EOI.
_STANDALONE = {0x01, *range(0xD0, 0xD8), _SOI, _EOI}
#: A frame larger than this, in bytes or in pixels, is no camera's frame: it is skipped, never held
#: whole in memory or decoded.
MAX_FRAME_BYTES = 16 * 1024 * 1024
MAX_FRAME_PIXELS = 4096 * 4096
_CHUNK = 64 * 1024


class _Bytes:
    """A file read forwards in chunks, with a look at the bytes ahead."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._buffer = bytearray()

    def _fill(self, count: int) -> bool:
        while len(self._buffer) < count:
            chunk = self._stream.read(_CHUNK)
            if not chunk:
                return False
            self._buffer += chunk
        return True

    def find_start(self) -> bool:
        """Skip to the next ``FF D8``; False at the end of the file."""
        while True:
            index = self._buffer.find(b"\xff\xd8")
            if index >= 0:
                del self._buffer[:index]
                return True
            keep = self._buffer[-1:] if self._buffer[-1:] == b"\xff" else b""
            self._buffer = bytearray(keep)
            if not self._fill(len(keep) + 1):
                return False

    def frame(self) -> bytes | None:
        """The JPEG that starts here (at ``FF D8``), or None when the file ends inside it or it is
        malformed (then the search goes on after its first byte)."""
        buffer, at, in_scan = self._buffer, 2, False
        while at <= MAX_FRAME_BYTES:
            if in_scan:  # entropy-coded data: up to the next byte pair that is a marker
                index = buffer.find(b"\xff", at)
                if index < 0:
                    at = len(buffer)
                    if not self._fill(at + 1):
                        break
                    continue
                if not self._fill(index + 2):
                    break
                following = buffer[index + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:  # a stuffed FF, a restart
                    at = index + 2
                elif following == 0xFF:  # fill before a marker
                    at = index + 1
                else:
                    at, in_scan = index, False
                continue
            if not self._fill(at + 2) or buffer[at] != 0xFF:
                break
            marker = buffer[at + 1]
            if marker == 0xFF:
                at += 1
            elif marker == _EOI:
                frame = bytes(buffer[: at + 2])
                del buffer[: at + 2]
                return frame
            elif marker == _SOI:
                break
            elif marker in _STANDALONE:
                at += 2
            else:
                if not self._fill(at + 4):
                    break
                at += 2 + int.from_bytes(buffer[at + 2 : at + 4], "big")
                in_scan = marker == _SOS
        del buffer[:1]  # not a frame: the search goes on after its first byte
        return None


def jpeg_frames(stream: BinaryIO) -> Iterator[bytes]:
    """The JPEG frames of a Motion-JPEG stream or MJPG AVI, in order, each whole."""
    reader = _Bytes(stream)
    while reader.find_start():
        frame = reader.frame()
        if frame is not None:
            yield frame


def _gray_jpeg(data: bytes) -> Image.Image:
    """A JPEG in greyscale; libjpeg decodes only the luma when asked for "L"."""
    with Image.open(io.BytesIO(data)) as image:
        if image.format != "JPEG":
            raise UnidentifiedImageError("not a JPEG")
        if image.width * image.height > MAX_FRAME_PIXELS:
            raise ValueError(f"a frame of {image.width}x{image.height} pixels")
        image.draft("L", image.size)
        return image.convert("L")


class MjpegFileReader:
    """A Motion-JPEG file played at ``fps``; ``CameraGone`` at its end."""

    is_file = True

    def __init__(self, path: Path, *, fps: int) -> None:
        try:
            self._file: BinaryIO | None = path.open("rb")
        except OSError as exc:
            raise CameraUnavailable(f"cannot open {path}: {exc.strerror or exc}") from None
        self._frames = jpeg_frames(self._file)
        self._gap_s = 1.0 / fps
        self._due = time.monotonic()
        self.frames_skipped = 0
        first = self._next()
        if first is None:
            self.close()
            raise CameraUnavailable(f"{path} holds no JPEG frame: a camera file is Motion-JPEG (.avi or .mjpeg)")
        self._first: Image.Image | None = first
        self.resolution = first.size

    def _next(self) -> Image.Image | None:
        for data in self._frames:
            try:
                return _gray_jpeg(data)
            except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
                self.frames_skipped += 1
        return None

    def read(self, timeout_s: float) -> Image.Image | None:
        if self._file is None:
            raise CameraGone("closed")
        wait = self._due - time.monotonic()
        if wait > timeout_s:
            time.sleep(timeout_s)
            return None
        if wait > 0:
            time.sleep(wait)
        self._due = max(self._due + self._gap_s, time.monotonic() - self._gap_s)
        frame, self._first = (self._first, None) if self._first is not None else (self._next(), None)
        if frame is None:
            raise CameraGone("the file has ended")
        self.resolution = frame.size
        return frame

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


# --- V4L2 -------------------------------------------------------------------------------------


def _ioc(direction: int, number: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord("V") << 8) | number


class _Capability(ctypes.Structure):
    _fields_ = [
        ("driver", ctypes.c_char * 16),
        ("card", ctypes.c_char * 32),
        ("bus_info", ctypes.c_char * 32),
        ("version", ctypes.c_uint32),
        ("capabilities", ctypes.c_uint32),
        ("device_caps", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32 * 3),
    ]


class _PixFormat(ctypes.Structure):
    _fields_ = [
        ("width", ctypes.c_uint32),
        ("height", ctypes.c_uint32),
        ("pixelformat", ctypes.c_uint32),
        ("field", ctypes.c_uint32),
        ("bytesperline", ctypes.c_uint32),
        ("sizeimage", ctypes.c_uint32),
        ("colorspace", ctypes.c_uint32),
        ("priv", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("ycbcr_enc", ctypes.c_uint32),
        ("quantization", ctypes.c_uint32),
        ("xfer_func", ctypes.c_uint32),
    ]


class _FormatUnion(ctypes.Union):
    _fields_ = [("pix", _PixFormat), ("raw_data", ctypes.c_uint8 * 200), ("_align", ctypes.c_void_p)]


class _Format(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("fmt", _FormatUnion)]


class _RequestBuffers(ctypes.Structure):
    _fields_ = [
        ("count", ctypes.c_uint32),
        ("type", ctypes.c_uint32),
        ("memory", ctypes.c_uint32),
        ("capabilities", ctypes.c_uint32),
        ("flags", ctypes.c_uint8),
        ("reserved", ctypes.c_uint8 * 3),
    ]


class _Timecode(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("frames", ctypes.c_uint8),
        ("seconds", ctypes.c_uint8),
        ("minutes", ctypes.c_uint8),
        ("hours", ctypes.c_uint8),
        ("userbits", ctypes.c_uint8 * 4),
    ]


class _BufferLocation(ctypes.Union):
    _fields_ = [
        ("offset", ctypes.c_uint32),
        ("userptr", ctypes.c_ulong),
        ("planes", ctypes.c_void_p),
        ("fd", ctypes.c_int32),
    ]


class _Buffer(ctypes.Structure):
    _fields_ = [
        ("index", ctypes.c_uint32),
        ("type", ctypes.c_uint32),
        ("bytesused", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("field", ctypes.c_uint32),
        ("timestamp_s", ctypes.c_long),
        ("timestamp_us", ctypes.c_long),
        ("timecode", _Timecode),
        ("sequence", ctypes.c_uint32),
        ("memory", ctypes.c_uint32),
        ("m", _BufferLocation),
        ("length", ctypes.c_uint32),
        ("reserved2", ctypes.c_uint32),
        ("request_fd", ctypes.c_int32),
    ]


class _Fraction(ctypes.Structure):
    _fields_ = [("numerator", ctypes.c_uint32), ("denominator", ctypes.c_uint32)]


class _CaptureParm(ctypes.Structure):
    _fields_ = [
        ("capability", ctypes.c_uint32),
        ("capturemode", ctypes.c_uint32),
        ("timeperframe", _Fraction),
        ("extendedmode", ctypes.c_uint32),
        ("readbuffers", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32 * 4),
    ]


class _ParmUnion(ctypes.Union):
    _fields_ = [("capture", _CaptureParm), ("raw_data", ctypes.c_uint8 * 200)]


class _StreamParm(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("parm", _ParmUnion)]


# The kernel's sizes on a 64-bit machine (include/uapi/linux/videodev2.h): a wrong layout would
# make every request number wrong, so it fails here, at import, not at a customer's scan.
for _struct, _size in ((_Capability, 104), (_Format, 208), (_RequestBuffers, 20), (_Buffer, 88), (_StreamParm, 204)):
    if ctypes.sizeof(_struct) != _size:  # pragma: no cover - a 32-bit machine
        raise ImportError(f"V4L2 structure {_struct.__name__} is {ctypes.sizeof(_struct)} bytes, not {_size}")

VIDIOC_QUERYCAP = _ioc(2, 0, ctypes.sizeof(_Capability))
VIDIOC_G_FMT = _ioc(3, 4, ctypes.sizeof(_Format))
VIDIOC_S_FMT = _ioc(3, 5, ctypes.sizeof(_Format))
VIDIOC_REQBUFS = _ioc(3, 8, ctypes.sizeof(_RequestBuffers))
VIDIOC_QUERYBUF = _ioc(3, 9, ctypes.sizeof(_Buffer))
VIDIOC_QBUF = _ioc(3, 15, ctypes.sizeof(_Buffer))
VIDIOC_DQBUF = _ioc(3, 17, ctypes.sizeof(_Buffer))
VIDIOC_STREAMON = _ioc(1, 18, ctypes.sizeof(ctypes.c_int))
VIDIOC_STREAMOFF = _ioc(1, 19, ctypes.sizeof(ctypes.c_int))
VIDIOC_S_PARM = _ioc(3, 22, ctypes.sizeof(_StreamParm))

_CAPTURE, _MMAP = 1, 1
_CAP_VIDEO_CAPTURE, _CAP_STREAMING, _CAP_DEVICE_CAPS = 0x1, 0x04000000, 0x80000000
_BUF_FLAG_ERROR = 0x40


def fourcc(code: str) -> int:
    return int.from_bytes(code.encode("ascii"), "little")


#: The pixel formats asked for, in order of preference.
PIXEL_FORMATS = ("GREY", "YUYV", "MJPG")
#: Errors that mean the device has gone (unplugged) rather than a frame being late.
_GONE = {errno.ENODEV, errno.EIO, errno.ENXIO, errno.EBADF}
_BUFFERS = 2


class _Kernel(Protocol):
    """The system calls a V4L2 reader makes; the tests model a device behind them."""

    def open(self, path: str) -> int: ...
    def ioctl(self, fd: int, request: int, argument: ctypes.Structure | ctypes.c_int) -> None: ...
    def mmap(self, fd: int, length: int, offset: int) -> mmap.mmap: ...
    def wait_readable(self, fd: int, timeout_s: float) -> bool: ...
    def close(self, fd: int) -> None: ...


class _Linux:
    def open(self, path: str) -> int:
        return os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)

    def ioctl(self, fd: int, request: int, argument: ctypes.Structure | ctypes.c_int) -> None:
        import fcntl

        fcntl.ioctl(fd, request, argument)

    def mmap(self, fd: int, length: int, offset: int) -> mmap.mmap:
        return mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=offset)

    def wait_readable(self, fd: int, timeout_s: float) -> bool:
        readable, _, _ = select.select([fd], [], [], timeout_s)
        return bool(readable)

    def close(self, fd: int) -> None:
        os.close(fd)


class V4l2Reader:
    """One V4L2 capture device, streaming into memory-mapped buffers."""

    is_file = False

    def __init__(self, path: str, *, size: tuple[int, int], fps: int, kernel: _Kernel | None = None) -> None:
        self._kernel = kernel or _Linux()
        self.frames_skipped = 0
        self._maps: list[mmap.mmap] = []
        self._streaming = False
        try:
            self._fd: int | None = self._kernel.open(path)
        except OSError as exc:
            raise CameraUnavailable(f"cannot open {path}: {exc.strerror or exc}") from None
        try:
            self._start(path, size, fps)
        except OSError as exc:
            self.close()
            if isinstance(exc, CameraUnavailable):
                raise
            raise CameraUnavailable(f"{path}: {exc.strerror or exc}") from None

    def _start(self, path: str, size: tuple[int, int], fps: int) -> None:
        assert self._fd is not None
        fd, kernel = self._fd, self._kernel
        capability = _Capability()
        kernel.ioctl(fd, VIDIOC_QUERYCAP, capability)
        caps = capability.device_caps if capability.capabilities & _CAP_DEVICE_CAPS else capability.capabilities
        if not caps & _CAP_VIDEO_CAPTURE or not caps & _CAP_STREAMING:
            raise CameraUnavailable(f"{path} is not a streaming video capture device")
        chosen = None
        for code in PIXEL_FORMATS:
            wanted = _Format(type=_CAPTURE)
            wanted.fmt.pix.width, wanted.fmt.pix.height = size
            wanted.fmt.pix.pixelformat = fourcc(code)
            kernel.ioctl(fd, VIDIOC_S_FMT, wanted)  # the driver writes back what it chose
            if wanted.fmt.pix.pixelformat == fourcc(code):
                chosen = wanted.fmt.pix
                break
        if chosen is None:
            raise CameraUnavailable(f"{path} offers none of the pixel formats {', '.join(PIXEL_FORMATS)}")
        self._format = chosen.pixelformat
        self.resolution = (int(chosen.width), int(chosen.height))
        self._bytes_per_line = int(chosen.bytesperline) or self.resolution[0] * (
            2 if self._format == fourcc("YUYV") else 1
        )
        rate = _StreamParm(type=_CAPTURE)
        rate.parm.capture.timeperframe.numerator, rate.parm.capture.timeperframe.denominator = 1, fps
        try:
            kernel.ioctl(fd, VIDIOC_S_PARM, rate)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOTTY):  # not every driver sets a rate
                raise
        request = _RequestBuffers(count=_BUFFERS, type=_CAPTURE, memory=_MMAP)
        kernel.ioctl(fd, VIDIOC_REQBUFS, request)
        if request.count < 1:
            raise CameraUnavailable(f"{path} gave no capture buffers")
        for index in range(request.count):
            buffer = _Buffer(index=index, type=_CAPTURE, memory=_MMAP)
            kernel.ioctl(fd, VIDIOC_QUERYBUF, buffer)
            self._maps.append(kernel.mmap(fd, buffer.length, buffer.m.offset))
            kernel.ioctl(fd, VIDIOC_QBUF, buffer)
        kernel.ioctl(fd, VIDIOC_STREAMON, ctypes.c_int(_CAPTURE))
        self._streaming = True

    def read(self, timeout_s: float) -> Image.Image | None:
        if self._fd is None:
            raise CameraGone("closed")
        try:
            if not self._kernel.wait_readable(self._fd, timeout_s):
                return None
            newest = self._dequeue()
            if newest is None:
                return None
            while (later := self._dequeue()) is not None:  # frames waiting: only the newest counts
                self._kernel.ioctl(self._fd, VIDIOC_QBUF, newest)
                newest = later
            try:
                return self._picture(newest)
            finally:
                self._kernel.ioctl(self._fd, VIDIOC_QBUF, newest)
        except OSError as exc:
            if exc.errno in _GONE:
                raise CameraGone(exc.strerror or str(exc)) from None
            raise

    def _dequeue(self) -> _Buffer | None:
        assert self._fd is not None
        buffer = _Buffer(type=_CAPTURE, memory=_MMAP)
        try:
            self._kernel.ioctl(self._fd, VIDIOC_DQBUF, buffer)
        except BlockingIOError:
            return None
        return buffer

    def _picture(self, buffer: _Buffer) -> Image.Image | None:
        """The buffer's frame in greyscale, or None (counted) when it arrived damaged."""
        width, height = self.resolution
        data = self._maps[buffer.index][: buffer.bytesused]
        try:
            if buffer.flags & _BUF_FLAG_ERROR:
                raise ValueError("the driver marked the frame damaged")
            if self._format == fourcc("MJPG"):
                return _gray_jpeg(data)
            step = self._bytes_per_line
            if self._format == fourcc("YUYV") and step == 2 * width:
                rows = data[: 2 * width * height : 2]
            elif self._format == fourcc("YUYV"):
                rows = b"".join(data[y * step : y * step + 2 * width : 2] for y in range(height))
            else:
                rows = b"".join(data[y * step : y * step + width] for y in range(height))
            return Image.frombytes("L", (width, height), rows)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
            self.frames_skipped += 1
            return None

    def close(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if self._streaming:
            try:
                self._kernel.ioctl(fd, VIDIOC_STREAMOFF, ctypes.c_int(_CAPTURE))
            except OSError:
                pass  # unplugged: nothing to stop
        for mapping in self._maps:
            mapping.close()
        self._maps.clear()
        self._kernel.close(fd)
