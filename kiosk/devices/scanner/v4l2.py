"""The V4L2 calls a camera reader makes, as ctypes structures and one small seam.

The structures follow the kernel's include/uapi/linux/videodev2.h with the 64-bit layout (the
kiosk runs on linux-x86_64 and linux-aarch64 only, where a pointer and a long are 8 bytes and the
ioctl numbers use the generic encoding). Everything that touches the device goes through
``V4l2Io`` so that the tests can put a modelled driver where the kernel would be; the reader itself
(kiosk/devices/scanner/frames.py) only fills and reads these structures.
"""

from __future__ import annotations

import ctypes
import fcntl
import mmap
import os
from typing import Protocol

__all__ = [
    "BUF_FLAG_ERROR",
    "BUF_TYPE_VIDEO_CAPTURE",
    "CAP_DEVICE_CAPS",
    "CAP_STREAMING",
    "CAP_VIDEO_CAPTURE",
    "FIELD_ANY",
    "MEMORY_MMAP",
    "VIDIOC_DQBUF",
    "VIDIOC_QBUF",
    "VIDIOC_QUERYBUF",
    "VIDIOC_QUERYCAP",
    "VIDIOC_REQBUFS",
    "VIDIOC_STREAMOFF",
    "VIDIOC_STREAMON",
    "VIDIOC_S_FMT",
    "VIDIOC_S_PARM",
    "Buffer",
    "Capability",
    "Format",
    "PixFormat",
    "RequestBuffers",
    "StreamParm",
    "SystemIo",
    "V4l2Io",
    "fourcc",
    "fourcc_text",
]

u8, u32, s32 = ctypes.c_uint8, ctypes.c_uint32, ctypes.c_int32


def fourcc(code: str) -> int:
    """A pixel format's number from its four letters ("YUYV"), as the kernel's v4l2_fourcc."""
    return int.from_bytes(code.encode("ascii"), "little")


def fourcc_text(value: int) -> str:
    """The four letters of a pixel format number, for messages (unprintable bytes as '?')."""
    return "".join(chr(b) if 0x20 < b < 0x7F else "?" for b in value.to_bytes(4, "little"))


BUF_TYPE_VIDEO_CAPTURE = 1
MEMORY_MMAP = 1
FIELD_ANY = 0
CAP_VIDEO_CAPTURE = 0x00000001
CAP_STREAMING = 0x04000000
CAP_DEVICE_CAPS = 0x80000000  # device_caps holds this node's own capabilities
BUF_FLAG_ERROR = 0x00000040  # the driver dequeued the buffer but its data may be corrupt


class Capability(ctypes.Structure):
    _fields_ = [
        ("driver", ctypes.c_char * 16),
        ("card", ctypes.c_char * 32),
        ("bus_info", ctypes.c_char * 32),
        ("version", u32),
        ("capabilities", u32),
        ("device_caps", u32),
        ("reserved", u32 * 3),
    ]


class PixFormat(ctypes.Structure):
    _fields_ = [
        ("width", u32),
        ("height", u32),
        ("pixelformat", u32),
        ("field", u32),
        ("bytesperline", u32),
        ("sizeimage", u32),
        ("colorspace", u32),
        ("priv", u32),
        ("flags", u32),
        ("ycbcr_enc", u32),
        ("quantization", u32),
        ("xfer_func", u32),
    ]


class _FormatUnion(ctypes.Union):
    # The kernel's union also holds v4l2_window, which has pointers: hence 8-byte alignment.
    _fields_ = [("pix", PixFormat), ("raw_data", u8 * 200), ("_align", ctypes.c_void_p)]


class Format(ctypes.Structure):
    _fields_ = [("type", u32), ("fmt", _FormatUnion)]


class RequestBuffers(ctypes.Structure):
    _fields_ = [
        ("count", u32),
        ("type", u32),
        ("memory", u32),
        ("capabilities", u32),
        ("flags", u8),
        ("reserved", u8 * 3),
    ]


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timecode(ctypes.Structure):
    _fields_ = [
        ("type", u32),
        ("flags", u32),
        ("frames", u8),
        ("seconds", u8),
        ("minutes", u8),
        ("hours", u8),
        ("userbits", u8 * 4),
    ]


class _BufferLocation(ctypes.Union):
    _fields_ = [("offset", u32), ("userptr", ctypes.c_ulong), ("planes", ctypes.c_void_p), ("fd", s32)]


class Buffer(ctypes.Structure):
    _fields_ = [
        ("index", u32),
        ("type", u32),
        ("bytesused", u32),
        ("flags", u32),
        ("field", u32),
        ("timestamp", _Timeval),
        ("timecode", _Timecode),
        ("sequence", u32),
        ("memory", u32),
        ("m", _BufferLocation),
        ("length", u32),
        ("reserved2", u32),
        ("request_fd", s32),
    ]


class _Fract(ctypes.Structure):
    _fields_ = [("numerator", u32), ("denominator", u32)]


class _CaptureParm(ctypes.Structure):
    _fields_ = [
        ("capability", u32),
        ("capturemode", u32),
        ("timeperframe", _Fract),
        ("extendedmode", u32),
        ("readbuffers", u32),
        ("reserved", u32 * 4),
    ]


class _ParmUnion(ctypes.Union):
    _fields_ = [("capture", _CaptureParm), ("raw_data", u8 * 200)]


class StreamParm(ctypes.Structure):
    _fields_ = [("type", u32), ("parm", _ParmUnion)]


def _ioc(direction: int, number: int, size: int) -> int:
    """The generic ioctl encoding (asm-generic/ioctl.h), type 'V'."""
    return (direction << 30) | (size << 16) | (ord("V") << 8) | number


_WRITE, _READ = 1, 2  # the kernel's _IOC_WRITE and _IOC_READ
VIDIOC_QUERYCAP = _ioc(_READ, 0, ctypes.sizeof(Capability))
VIDIOC_S_FMT = _ioc(_READ | _WRITE, 5, ctypes.sizeof(Format))
VIDIOC_REQBUFS = _ioc(_READ | _WRITE, 8, ctypes.sizeof(RequestBuffers))
VIDIOC_QUERYBUF = _ioc(_READ | _WRITE, 9, ctypes.sizeof(Buffer))
VIDIOC_QBUF = _ioc(_READ | _WRITE, 15, ctypes.sizeof(Buffer))
VIDIOC_DQBUF = _ioc(_READ | _WRITE, 17, ctypes.sizeof(Buffer))
VIDIOC_STREAMON = _ioc(_WRITE, 18, ctypes.sizeof(ctypes.c_int))
VIDIOC_STREAMOFF = _ioc(_WRITE, 19, ctypes.sizeof(ctypes.c_int))
VIDIOC_S_PARM = _ioc(_READ | _WRITE, 22, ctypes.sizeof(StreamParm))


class V4l2Io(Protocol):
    """The device calls, so that a modelled driver can answer them in tests. Failures are OSError
    with the errno the kernel would give (EAGAIN: no frame ready; ENODEV: unplugged)."""

    def open(self, path: str) -> int:
        """Open the node for reading and writing, non-blocking; the descriptor is select()ed on."""
        ...

    def ioctl(self, fd: int, request: int, argument: ctypes.Structure | ctypes.c_int) -> None:
        """Make the call; the driver's answer is written back into ``argument``."""
        ...

    def map(self, fd: int, length: int, offset: int) -> mmap.mmap:
        """Map one of the driver's buffers (its length and offset from VIDIOC_QUERYBUF)."""
        ...

    def close(self, fd: int) -> None: ...


class SystemIo:
    """The real kernel's V4L2 device nodes."""

    def open(self, path: str) -> int:
        return os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)

    def ioctl(self, fd: int, request: int, argument: ctypes.Structure | ctypes.c_int) -> None:
        fcntl.ioctl(fd, request, argument)  # a writable buffer: the kernel's answer lands in it

    def map(self, fd: int, length: int, offset: int) -> mmap.mmap:
        return mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=offset)

    def close(self, fd: int) -> None:
        os.close(fd)
