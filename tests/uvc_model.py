"""A modelled USB camera driver (uvcvideo's behaviour as seen through V4L2), answering the calls of
kiosk.devices.scanner.v4l2.V4l2Io, so the frame reader can be tested without a camera.

What it models: the formats and frame sizes a camera offers (S_FMT substitutes the first offered
format for one it lacks and rounds the size to the nearest it has), a frame rate it may refuse
(EINVAL), a driver's minimum number of buffers, buffers the application must queue before the
driver can fill them (a frame that finds no queued buffer is dropped, as uvcvideo does), EINVAL
for a buffer queued twice or an unknown index, EAGAIN from a non-blocking DQBUF with nothing done,
and unplugging (every call then fails with ENODEV). Readiness is an eventfd in semaphore mode,
one count per finished buffer, so the reader's select() waits on a real descriptor.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
from collections import deque
from dataclasses import dataclass, field

from kiosk.devices.scanner import v4l2

__all__ = ["ModelledUvcCamera"]

_PAGE = mmap.PAGESIZE
_NAMES = {
    v4l2.VIDIOC_QUERYCAP: "QUERYCAP",
    v4l2.VIDIOC_S_FMT: "S_FMT",
    v4l2.VIDIOC_S_PARM: "S_PARM",
    v4l2.VIDIOC_REQBUFS: "REQBUFS",
    v4l2.VIDIOC_QUERYBUF: "QUERYBUF",
    v4l2.VIDIOC_QBUF: "QBUF",
    v4l2.VIDIOC_DQBUF: "DQBUF",
    v4l2.VIDIOC_STREAMON: "STREAMON",
    v4l2.VIDIOC_STREAMOFF: "STREAMOFF",
}


def _fail(code: int) -> OSError:
    return OSError(code, os.strerror(code))


@dataclass
class ModelledUvcCamera:
    #: Pixel format -> frame sizes offered, in the camera's order (the first format is its default).
    formats: dict[str, list[tuple[int, int]]] = field(default_factory=lambda: {"YUYV": [(640, 480), (1280, 720)]})
    frame_rates: tuple[int, ...] | None = (30, 15)  # None: S_PARM refused with EINVAL
    min_buffers: int = 2
    row_padding: int = 0  # bytes at the end of each row of an uncompressed format
    device_caps: int = v4l2.CAP_VIDEO_CAPTURE | v4l2.CAP_STREAMING
    open_error: int | None = None
    refuses_formats: bool = False  # S_FMT fails EINVAL for a format not offered (some non-UVC drivers)
    usb_bandwidth: bool = True  # False: STREAMON fails ENOSPC, as uvcvideo does on a crowded bus
    calls: list[str] = field(default_factory=list)
    requested_formats: list[str] = field(default_factory=list)
    timeperframe: tuple[int, int] | None = None
    dropped: int = 0  # frames that found no queued buffer
    fd: int | None = None
    closes: int = 0
    gone: bool = False
    streaming: bool = False
    maps: list[mmap.mmap] = field(default_factory=list)
    _pix: v4l2.PixFormat | None = None
    _queued: deque[int] = field(default_factory=deque)  # queued by the application, empty
    _done: deque[tuple[int, int, int]] = field(default_factory=deque)  # index, bytesused, flags

    # --- V4l2Io ---

    def open(self, path: str) -> int:
        if self.open_error is not None:
            raise _fail(self.open_error)
        self.fd = os.eventfd(0, os.EFD_SEMAPHORE | os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        return self.fd

    def ioctl(self, fd: int, request: int, argument: ctypes.Structure | ctypes.c_int) -> None:
        assert fd == self.fd, "a call on a descriptor the driver did not give"
        self.calls.append(_NAMES[request])
        if self.gone:
            raise _fail(errno.ENODEV)
        getattr(self, "_" + _NAMES[request].lower())(argument)

    def map(self, fd: int, length: int, offset: int) -> mmap.mmap:
        assert fd == self.fd and offset % _PAGE == 0
        index = offset // self._buffer_bytes()
        assert 0 <= index < len(self.maps) and length == self._buffer_bytes(), "QUERYBUF's length and offset"
        return self.maps[index]

    def close(self, fd: int) -> None:
        assert fd == self.fd
        self.closes += 1
        os.close(fd)

    # --- what the test does to the camera ---

    @property
    def resolution(self) -> tuple[int, int]:
        assert self._pix is not None
        return self._pix.width, self._pix.height

    @property
    def stride(self) -> int:
        assert self._pix is not None
        return int(self._pix.bytesperline)

    def deliver(self, data: bytes, flags: int = 0) -> None:
        """A frame finished by the camera: into the first queued buffer, or dropped if none is."""
        assert self.streaming and not self.gone
        if not self._queued:
            self.dropped += 1
            return
        index = self._queued.popleft()
        length = min(len(data), self._buffer_bytes())
        self.maps[index][:length] = data[:length]
        self._done.append((index, length, flags))
        os.eventfd_write(self.fd, 1)

    def wake_without_frame(self) -> None:
        """Readiness with nothing to dequeue (the reader must take EAGAIN in its stride)."""
        os.eventfd_write(self.fd, 1)

    def unplug(self) -> None:
        """The cable is pulled: select() says readable (as POLLERR does), every call fails ENODEV."""
        self.gone = True
        os.eventfd_write(self.fd, 1)

    @property
    def buffers_with_driver(self) -> int:
        return len(self._queued) + len(self._done)

    # --- the driver ---

    def _buffer_bytes(self) -> int:
        assert self._pix is not None
        return -(-self._pix.sizeimage // _PAGE) * _PAGE

    def _querycap(self, capability: v4l2.Capability) -> None:
        capability.driver, capability.card = b"uvcvideo", b"Modelled Camera"
        capability.device_caps = self.device_caps
        capability.capabilities = self.device_caps | v4l2.CAP_DEVICE_CAPS | 0x00800000  # META_CAPTURE elsewhere

    def _s_fmt(self, format_: v4l2.Format) -> None:
        if self.maps:
            raise _fail(errno.EBUSY)
        pix = format_.fmt.pix
        asked = v4l2.fourcc_text(pix.pixelformat)
        self.requested_formats.append(asked)
        if asked not in self.formats and self.refuses_formats:
            raise _fail(errno.EINVAL)
        name = asked if asked in self.formats else next(iter(self.formats))
        width, height = min(self.formats[name], key=lambda s: abs(s[0] * s[1] - pix.width * pix.height))
        bytes_per_pixel = {"GREY": 1, "YUYV": 2}.get(name)
        pix.pixelformat, pix.width, pix.height, pix.field = v4l2.fourcc(name), width, height, 1  # FIELD_NONE
        if bytes_per_pixel:
            pix.bytesperline = width * bytes_per_pixel + self.row_padding
            pix.sizeimage = pix.bytesperline * height
        else:
            pix.bytesperline, pix.sizeimage = 0, width * height  # compressed: the largest frame it sends
        self._pix = v4l2.PixFormat.from_buffer_copy(pix)

    def _s_parm(self, parm: v4l2.StreamParm) -> None:
        if self.frame_rates is None:
            raise _fail(errno.EINVAL)
        fraction = parm.parm.capture.timeperframe
        asked = fraction.denominator / max(1, fraction.numerator)
        chosen = min(self.frame_rates, key=lambda rate: abs(rate - asked))
        fraction.numerator, fraction.denominator = 1, chosen
        self.timeperframe = (1, chosen)

    def _reqbufs(self, request: v4l2.RequestBuffers) -> None:
        if request.memory != v4l2.MEMORY_MMAP or request.type != v4l2.BUF_TYPE_VIDEO_CAPTURE:
            raise _fail(errno.EINVAL)
        request.count = max(request.count, self.min_buffers)
        self.maps = [mmap.mmap(-1, self._buffer_bytes()) for _ in range(request.count)]

    def _querybuf(self, buffer: v4l2.Buffer) -> None:
        if not 0 <= buffer.index < len(self.maps):
            raise _fail(errno.EINVAL)
        buffer.length, buffer.m.offset = self._buffer_bytes(), buffer.index * self._buffer_bytes()

    def _qbuf(self, buffer: v4l2.Buffer) -> None:
        index = buffer.index
        if not 0 <= index < len(self.maps) or index in self._queued or any(d[0] == index for d in self._done):
            raise _fail(errno.EINVAL)
        self._queued.append(index)

    def _dqbuf(self, buffer: v4l2.Buffer) -> None:
        if not self.streaming:
            raise _fail(errno.EINVAL)
        if not self._done:
            try:
                os.eventfd_read(self.fd)  # a wake-up without a frame
            except BlockingIOError:
                pass
            raise _fail(errno.EAGAIN)
        os.eventfd_read(self.fd)
        buffer.index, buffer.bytesused, buffer.flags = self._done.popleft()

    def _streamon(self, kind: ctypes.c_int) -> None:
        assert kind.value == v4l2.BUF_TYPE_VIDEO_CAPTURE
        if not self.usb_bandwidth:
            raise _fail(errno.ENOSPC)
        self.streaming = True

    def _streamoff(self, kind: ctypes.c_int) -> None:
        assert kind.value == v4l2.BUF_TYPE_VIDEO_CAPTURE
        self.streaming = False
        self._queued.clear()
        self._done.clear()
