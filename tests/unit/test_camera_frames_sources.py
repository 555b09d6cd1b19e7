"""Camera frames without OpenCV (kiosk/devices/scanner/frames.py): a V4L2 camera, modelled as
uvcvideo behaves (tests/uvc_model.py), and Motion-JPEG files as OpenCV writes them. The tests use
OpenCV and numpy to make and check frames; the module under test must not load them."""

from __future__ import annotations

import ctypes
import errno
import io
import json
import random
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from kiosk.devices.scanner import v4l2
from kiosk.devices.scanner.frames import (
    CameraGone,
    CameraUnavailable,
    JpegSplitter,
    MjpegFileFrames,
    V4l2Frames,
    open_frames,
)
from tests.uvc_model import ModelledUvcCamera

# --- frames to show -------------------------------------------------------------------------------


def scene(size: tuple[int, int], seed: int) -> Image.Image:
    """A greyscale picture with edges and gradients, different for each seed."""
    rng = random.Random(seed)
    width, height = size
    ramp = bytes((x * 255 // max(1, width - 1) + seed * 37) % 256 for x in range(width)) * height
    image = Image.frombytes("L", size, ramp)
    for _ in range(6):
        x, y = rng.randrange(width), rng.randrange(height)
        image.paste(rng.randrange(256), (x, y, min(width, x + width // 4), min(height, y + height // 4)))
    return image


def jpeg(image: Image.Image, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, **options)
    return out.getvalue()


def without_huffman_tables(data: bytes) -> bytes:
    """The JPEG as many USB cameras send Motion-JPEG: its DHT segments left out (the decoder is to
    use the standard tables, which are what PIL encoded with)."""
    out, at = bytearray(data[:2]), 2
    while data[at + 1] != 0xDA:
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if data[at + 1] != 0xC4:
            out += data[at : at + 2 + length]
        at += 2 + length
    return bytes(out + data[at:])


def yuyv(image: Image.Image, padding: int = 0) -> bytes:
    luma = image.tobytes()
    width = image.size[0]
    rows = []
    for row in range(image.size[1]):
        line = bytearray(b"\x80" * (2 * width))
        line[0::2] = luma[row * width : (row + 1) * width]
        rows.append(bytes(line) + b"\x00" * padding)
    return b"".join(rows)


def difference(image: Image.Image, reference: np.ndarray) -> tuple[float, int]:
    """Mean absolute difference in grey levels, and the difference 99 pixels in 100 are within."""
    delta = np.abs(np.asarray(image, dtype=np.int16) - reference.astype(np.int16))
    return float(delta.mean()), int(np.percentile(delta, 99))


# --- the V4L2 structures ---------------------------------------------------------------------------


def test_structures_and_ioctl_numbers_are_the_kernels_64_bit_ones() -> None:
    """Sizes and numbers as a C program compiled against linux/videodev2.h prints on x86_64 (the
    same on aarch64): a wrong size would make every ioctl fail with ENOTTY on a real camera."""
    sizes = [ctypes.sizeof(s) for s in (v4l2.Capability, v4l2.Format, v4l2.RequestBuffers, v4l2.Buffer)]
    assert sizes + [ctypes.sizeof(v4l2.StreamParm)] == [104, 208, 20, 88, 204]
    assert (v4l2.Format.fmt.offset, v4l2.Buffer.timestamp.offset, v4l2.Buffer.m.offset) == (8, 24, 64)
    assert (v4l2.Buffer.length.offset, v4l2.Buffer.sequence.offset) == (72, 56)
    numbers = [v4l2.VIDIOC_QUERYCAP, v4l2.VIDIOC_S_FMT, v4l2.VIDIOC_REQBUFS, v4l2.VIDIOC_QUERYBUF]
    numbers += [v4l2.VIDIOC_QBUF, v4l2.VIDIOC_DQBUF, v4l2.VIDIOC_STREAMON, v4l2.VIDIOC_STREAMOFF, v4l2.VIDIOC_S_PARM]
    expected = [0x80685600, 0xC0D05605, 0xC0145608, 0xC0585609, 0xC058560F, 0xC0585611, 0x40045612, 0x40045613]
    assert numbers == expected + [0xC0CC5616]
    assert v4l2.fourcc("MJPG") == 0x47504A4D and v4l2.fourcc_text(0x56595559) == "YUYV"


# --- a modelled V4L2 camera ----------------------------------------------------------------------


def open_camera(camera: ModelledUvcCamera, size: tuple[int, int] = (1280, 720), fps: int = 15) -> V4l2Frames:
    return V4l2Frames.open("/dev/video0", size=size, fps=fps, io_=camera)


def test_a_grey_camera_delivers_its_frames_as_they_are_padding_rows_and_all() -> None:
    camera = ModelledUvcCamera(formats={"YUYV": [(1280, 720)], "GREY": [(640, 480)]}, row_padding=64)
    reader = open_camera(camera, size=(640, 480))
    assert camera.requested_formats == ["GREY"] and reader.resolution == (640, 480)
    assert camera.calls[:3] == ["QUERYCAP", "S_FMT", "S_PARM"] and camera.timeperframe == (1, 15)
    assert camera.calls[-1] == "STREAMON" and camera.buffers_with_driver == 2
    picture = scene((640, 480), 1)
    padded = b"".join(picture.tobytes()[r * 640 : (r + 1) * 640] + b"\xee" * 64 for r in range(480))
    camera.deliver(padded)
    frame = reader.read(1.0)
    assert frame is not None and frame.mode == "L" and frame.tobytes() == picture.tobytes()
    assert camera.buffers_with_driver == 2  # given back after the copy
    reader.close()


def test_a_yuyv_camera_at_its_own_size_gives_the_luma_bytes() -> None:
    """Asked for GREY at 1280x720, the driver substitutes YUYV; asked for YUYV, it keeps it, at the
    size it has nearest to the one asked for."""
    camera = ModelledUvcCamera(formats={"YUYV": [(640, 480), (1280, 800)], "MJPG": [(1280, 720)]}, row_padding=32)
    reader = open_camera(camera)
    assert camera.requested_formats == ["GREY", "YUYV"]
    assert reader.resolution == (1280, 800) and reader.pixel_format == "YUYV"
    picture = scene((1280, 800), 2)
    camera.deliver(yuyv(picture, padding=32))
    frame = reader.read(1.0)
    assert frame is not None and frame.size == (1280, 800) and frame.tobytes() == picture.tobytes()
    reader.close()


def test_a_driver_that_refuses_a_format_instead_of_substituting_one() -> None:
    camera = ModelledUvcCamera(formats={"MJPG": [(1280, 720)], "YUYV": [(640, 480)]}, refuses_formats=True)
    reader = open_camera(camera)
    assert camera.requested_formats == ["GREY", "YUYV"] and reader.pixel_format == "YUYV"
    reader.close()


def test_a_motion_jpeg_camera_whose_frame_rate_cannot_be_set() -> None:
    camera = ModelledUvcCamera(formats={"MJPG": [(1920, 1080), (1280, 720)], "H264": [(1920, 1080)]}, frame_rates=None)
    reader = open_camera(camera)
    assert camera.requested_formats == ["GREY", "YUYV", "MJPG"] and reader.resolution == (1280, 720)
    assert "S_PARM" in camera.calls and camera.timeperframe is None  # refused, and the reader went on
    picture = scene((1280, 720), 3)
    camera.deliver(jpeg(picture.convert("RGB")))
    frame = reader.read(1.0)
    assert frame is not None and frame.mode == "L"
    mean, largest = difference(frame, np.asarray(picture))
    assert mean < 2.0 and largest < 8  # JPEG's own loss, luma decoded alone
    plain = jpeg(scene((1280, 720), 4))
    camera.deliver(without_huffman_tables(plain))
    frame = reader.read(1.0)
    assert frame is not None and frame.tobytes() == Image.open(io.BytesIO(plain)).tobytes()
    assert reader.frames_damaged == 0
    reader.close()


def test_frames_faster_than_reads_give_the_newest_and_no_queue_of_stale_ones() -> None:
    camera = ModelledUvcCamera(formats={"GREY": [(320, 240)]})
    reader = open_camera(camera, size=(320, 240))
    pictures = [scene((320, 240), seed) for seed in range(6)]
    camera.deliver(pictures[0].tobytes())
    camera.deliver(pictures[1].tobytes())
    frame = reader.read(1.0)
    assert frame is not None and frame.tobytes() == pictures[1].tobytes()
    assert camera.buffers_with_driver == 2 and camera.dropped == 0  # the older one was queued again
    assert reader.read(0.02) is None  # the older frame is not delivered afterwards
    for picture in pictures[2:5]:
        camera.deliver(picture.tobytes())  # the third finds no free buffer: the driver drops it
    frame = reader.read(1.0)
    assert frame is not None and frame.tobytes() == pictures[3].tobytes() and camera.dropped == 1
    camera.deliver(pictures[5].tobytes())
    frame = reader.read(1.0)
    assert frame is not None and frame.tobytes() == pictures[5].tobytes()
    reader.close()


def test_no_frame_in_time_and_a_wake_up_without_a_frame_give_none() -> None:
    camera = ModelledUvcCamera(formats={"GREY": [(320, 240)]})
    reader = open_camera(camera, size=(320, 240))
    assert reader.read(0.01) is None
    camera.wake_without_frame()
    assert reader.read(0.01) is None
    assert camera.calls.count("DQBUF") == 1  # select() waited the first time; EAGAIN the second
    camera.deliver(scene((320, 240), 4).tobytes())
    assert reader.read(1.0) is not None
    reader.close()


def test_unplugged_mid_stream_the_reader_says_gone_and_closes_cleanly() -> None:
    camera = ModelledUvcCamera(formats={"YUYV": [(640, 480)]})
    reader = open_camera(camera, size=(640, 480))
    camera.deliver(yuyv(scene((640, 480), 5)))
    assert reader.read(1.0) is not None
    camera.unplug()
    with pytest.raises(CameraGone) as gone:
        reader.read(1.0)
    assert gone.value.errno == errno.ENODEV and "/dev/video0" in str(gone.value)
    reader.close()
    reader.close()
    assert camera.closes == 1 and all(buffer.closed for buffer in camera.maps)
    assert camera.calls.count("STREAMOFF") == 1
    with pytest.raises(CameraGone):
        reader.read(0.01)


def test_close_stops_streaming_and_lets_go_of_every_buffer() -> None:
    camera = ModelledUvcCamera(formats={"GREY": [(320, 240)]}, min_buffers=4)
    reader = open_camera(camera, size=(320, 240))
    assert len(camera.maps) == 4 and camera.buffers_with_driver == 4  # the driver's minimum, all queued
    reader.close()
    assert not camera.streaming and camera.closes == 1 and all(buffer.closed for buffer in camera.maps)


def test_damaged_frames_are_skipped_and_counted_and_the_next_good_one_comes_through() -> None:
    camera = ModelledUvcCamera(formats={"MJPG": [(640, 480)]})
    reader = open_camera(camera, size=(640, 480))
    good = jpeg(scene((640, 480), 6))
    camera.deliver(good[: len(good) // 2])  # cut short
    camera.deliver(b"\x00" * 5000)
    assert reader.read(0.05) is None  # the newest was garbage; the first was given back unread
    camera.deliver(good, flags=v4l2.BUF_FLAG_ERROR)  # the driver says its data may be corrupt
    assert reader.read(0.05) is None
    camera.deliver(jpeg(scene((320, 240), 6)))  # not the size agreed
    assert reader.read(0.05) is None
    camera.deliver(good)
    frame = reader.read(1.0)
    assert frame is not None and frame.size == (640, 480) and reader.frames_damaged == 3
    reader.close()


def garbled(good: bytes, choice: st.DataObject) -> bytes:
    how = choice.draw(st.sampled_from(["cut", "flip", "splice", "noise"]))
    if how == "cut":
        return good[: choice.draw(st.integers(0, len(good) - 1))]
    if how == "noise":
        return choice.draw(st.binary(max_size=3000))
    data = bytearray(good)
    for _ in range(choice.draw(st.integers(1, 20))):
        at = choice.draw(st.integers(0, len(data) - 1))
        if how == "flip":
            data[at] = choice.draw(st.integers(0, 255))
        else:
            data[at:at] = choice.draw(st.sampled_from([b"\xff\xd8", b"\xff\xd9", b"\xff\xc0\xff\xff", b"\xff\xda"]))
    return bytes(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(choice=st.data())
def test_a_garbled_motion_jpeg_frame_never_stops_the_camera(choice: st.DataObject) -> None:
    """Hostile frame data (cut short, bytes changed, markers spliced in, noise) from the camera:
    read() never raises; the next whole frame comes through as greyscale at the agreed size."""
    camera = ModelledUvcCamera(formats={"MJPG": [(160, 120)]})
    reader = open_camera(camera, size=(160, 120))
    good = jpeg(scene((160, 120), 7))
    try:
        camera.deliver(garbled(good, choice))
        frame = reader.read(0.0)
        assert frame is None or (frame.size == (160, 120) and frame.mode == "L")
        camera.deliver(good)
        frame = reader.read(1.0)
        assert (
            frame is not None
            and frame.size == (160, 120)
            and frame.tobytes() == Image.open(io.BytesIO(good)).convert("L").tobytes()
        )
    finally:
        reader.close()


@pytest.mark.parametrize(
    ("camera", "says"),
    [
        (ModelledUvcCamera(device_caps=0x00800000 | v4l2.CAP_STREAMING), "not a video capture node"),
        (ModelledUvcCamera(device_caps=v4l2.CAP_VIDEO_CAPTURE), "cannot stream"),
        (ModelledUvcCamera(formats={"H264": [(1280, 720)], "NV12": [(1280, 720)]}), "offers none of GREY, YUYV, MJPG"),
        (ModelledUvcCamera(formats={"NV12": [(640, 480)]}, refuses_formats=True), "offers none of GREY, YUYV, MJPG$"),
        (ModelledUvcCamera(usb_bandwidth=False), "not enough USB bandwidth for 1280x720 YUYV"),
        (ModelledUvcCamera(open_error=errno.EBUSY), "Device or resource busy"),
        (ModelledUvcCamera(open_error=errno.EACCES), "Permission denied"),
    ],
    ids=[
        "metadata-node",
        "no-streaming",
        "no-format-of-ours",
        "refuses-formats",
        "usb-bandwidth",
        "busy",
        "no-permission",
    ],
)
def test_a_camera_that_cannot_serve_is_unavailable_with_the_reason(camera: ModelledUvcCamera, says: str) -> None:
    with pytest.raises(CameraUnavailable, match=says):
        open_camera(camera)
    assert camera.closes == (0 if camera.open_error else 1) and not camera.streaming


def test_no_device_on_this_machine_is_unavailable() -> None:
    with pytest.raises(CameraUnavailable, match="/dev/video(57|not-here)"):
        open_frames("57", size=(1280, 720), fps=15)  # /dev/video57, through the real system calls
    with pytest.raises(CameraUnavailable, match="not-here"):
        open_frames("/dev/video-not-here", size=(1280, 720), fps=15)


# --- Motion-JPEG files -----------------------------------------------------------------------------


def write_avi(path: Path, frames: list[np.ndarray], fps: int = 15) -> None:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


def colour_frames(count: int, size: tuple[int, int] = (640, 360)) -> list[np.ndarray]:
    frames = []
    for seed in range(count):
        grey = np.asarray(scene(size, seed))
        frames.append(np.dstack([grey, np.roll(grey, seed * 5, axis=1), 255 - grey]))  # colour, not only grey
    return frames


def cv2_grey(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))


class ManualClock:
    """Time that moves only when the reader sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def read_all(reader: MjpegFileFrames, limit: int = 1000) -> list[Image.Image]:
    frames = []
    with pytest.raises(CameraGone, match="ended"):
        for _ in range(limit):
            frame = reader.read(10.0)
            assert frame is not None
            frames.append(frame)
    return frames


def test_an_avi_written_by_opencv_plays_as_opencv_decodes_it(tmp_path: Path) -> None:
    video = tmp_path / "camera.avi"
    write_avi(video, colour_frames(12))
    clock = ManualClock()
    reader = MjpegFileFrames.open(str(video), fps=15, clock=clock, sleep=clock.sleep)
    assert reader.resolution == (640, 360)
    frames = read_all(reader)
    references = cv2_grey(video)
    assert len(frames) == len(references) == 12 and reader.frames_damaged == 0
    for frame, reference in zip(frames, references, strict=True):
        mean, largest = difference(frame, reference)
        # luma as coded against cv2's grey of the colour it decoded: apart only where chroma clips
        assert frame.mode == "L" and mean < 1.5 and largest <= 2, (mean, largest)
    assert clock.now == pytest.approx(100.0 + 12 / 15)  # at 15 a second (the end found when a 13th is due)
    reader.close()


def test_a_file_plays_at_its_rate_once(tmp_path: Path) -> None:
    """Paced to ``fps``, a frame not yet due is no frame, and the end is CameraGone (the camera
    source opens a file again to loop it)."""
    video = tmp_path / "once.mjpeg"
    pictures = [scene((96, 64), seed) for seed in range(3)]
    video.write_bytes(b"".join(jpeg(p) for p in pictures))
    clock = ManualClock()
    reader = MjpegFileFrames.open(str(video), fps=10, clock=clock, sleep=clock.sleep)
    shown = []
    for _ in range(2):
        frame = reader.read(1.0)
        assert frame is not None
        shown.append(min(range(3), key=lambda i: difference(frame, np.asarray(pictures[i]))[0]))
    assert clock.sleeps == [pytest.approx(0.1)]
    assert reader.read(0.04) is None and clock.sleeps[-1] == pytest.approx(0.04)  # not due yet
    frame = reader.read(0.5)
    assert frame is not None and clock.now == pytest.approx(100.2)
    shown.append(min(range(3), key=lambda i: difference(frame, np.asarray(pictures[i]))[0]))
    assert shown == [0, 1, 2]
    with pytest.raises(CameraGone, match="ended"):
        reader.read(1.0)
    assert reader.frames_damaged == 0
    reader.close()
    with pytest.raises(CameraGone):
        reader.read(0.1)


def exif_with_thumbnail(thumbnail: bytes) -> bytes:
    """An APP1 Exif segment whose IFD1 carries a JPEG thumbnail (its own SOI ... EOI)."""
    ifd0 = struct.pack("<H", 0) + struct.pack("<I", 8 + 6)  # no entries; IFD1 follows
    ifd1 = struct.pack("<H", 2)
    ifd1 += struct.pack("<HHII", 0x0201, 4, 1, 8 + 6 + 2 + 24 + 4)  # JPEGInterchangeFormat
    ifd1 += struct.pack("<HHII", 0x0202, 4, 1, len(thumbnail))  # its length
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd0 + ifd1 + struct.pack("<I", 0) + thumbnail
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def test_a_raw_stream_of_jpegs_with_thumbnails_progressive_scans_and_restarts(tmp_path: Path) -> None:
    pictures = [scene((320, 240), seed) for seed in range(4)]
    thumbnail = jpeg(scene((32, 24), 9))
    encoded = [
        jpeg(pictures[0])[:2] + exif_with_thumbnail(thumbnail) + jpeg(pictures[0])[2:],
        jpeg(pictures[1].convert("RGB"), progressive=True),  # several scans, tables between them
        jpeg(pictures[2], restart_marker_blocks=3),  # RSTn markers inside the entropy-coded data
        b"\xff\xd8\xff\xfe\x00\x05\xff\xd9!" + jpeg(pictures[3])[2:],  # a comment holding an EOI
    ]
    video = tmp_path / "frames.mjpeg"
    video.write_bytes(b"".join(encoded))
    reader = MjpegFileFrames.open(str(video), fps=1000)
    frames = read_all(reader)
    assert [f.size for f in frames] == [(320, 240)] * 4 and reader.frames_damaged == 0
    for frame, data in zip(frames, encoded, strict=True):
        assert frame.tobytes() == Image.open(io.BytesIO(data)).convert("L").tobytes()
    reader.close()


def test_a_file_cut_short_plays_its_whole_frames_then_ends(tmp_path: Path) -> None:
    video = tmp_path / "cut.avi"
    write_avi(video, colour_frames(6, (320, 240)))
    data = video.read_bytes()
    fourth = [i for i in range(len(data)) if data.startswith(b"\xff\xd8\xff", i)][3]
    video.write_bytes(data[: fourth + 3000])
    reader = open_frames(str(video), size=(1280, 720), fps=1000)
    assert len(read_all(reader)) == 3 and reader.frames_damaged == 1
    reader.close()
    video.write_bytes(data[:300])  # inside its headers: no frame at all
    with pytest.raises(CameraUnavailable, match="Motion-JPEG"):
        open_frames(str(video), size=(1280, 720), fps=15)


def test_garbage_between_and_inside_frames_of_a_file_costs_only_those_frames(tmp_path: Path) -> None:
    pictures = [scene((160, 120), seed) for seed in range(5)]
    encoded = [jpeg(p) for p in pictures]
    broken = encoded[2][: len(encoded[2]) // 2] + b"\x17" * 40 + encoded[2][len(encoded[2]) // 2 :]
    stream = encoded[0] + b"JUNK" * 100 + encoded[1] + broken[:300] + encoded[3] + random.Random(1).randbytes(9000)
    video = tmp_path / "garbage.mjpeg"
    video.write_bytes(stream + encoded[4])
    reader = open_frames(str(video), size=(160, 120), fps=1000)
    frames = read_all(reader)
    assert [f.tobytes() for f in frames] == [
        Image.open(io.BytesIO(encoded[i])).convert("L").tobytes() for i in (0, 1, 3, 4)
    ]
    assert reader.frames_damaged >= 1
    reader.close()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"scanner.device = /dev/video0\n" * 10,
        b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 2000,
        random.Random(2).randbytes(20000),
        b"\xff\xd8\xff" + b"\x00" * 500,
    ],
    ids=["empty", "text", "mp4", "noise", "jpeg-start-only"],
)
def test_a_file_that_is_not_motion_jpeg_is_unavailable_saying_what_is_read(tmp_path: Path, content: bytes) -> None:
    video = tmp_path / "video.bin"
    video.write_bytes(content)
    with pytest.raises(CameraUnavailable, match="Motion-JPEG|no whole JPEG frame"):
        open_frames(str(video), size=(1280, 720), fps=15)


def test_an_avi_of_another_codec_and_a_missing_file_are_unavailable(tmp_path: Path) -> None:
    video = tmp_path / "h264.avi"
    write_avi(video, colour_frames(2, (160, 120)))
    video.write_bytes(video.read_bytes().replace(b"MJPG", b"H264"))
    with pytest.raises(CameraUnavailable, match="MJPG .avi"):
        open_frames(str(video), size=(1280, 720), fps=15)
    with pytest.raises(CameraUnavailable, match="No such file"):
        open_frames(str(tmp_path / "missing.avi"), size=(1280, 720), fps=15)


SPLITTER_SAMPLES = [
    jpeg(scene((64, 48), 1)),
    jpeg(scene((64, 48), 2).convert("RGB"), progressive=True),
    jpeg(scene((64, 48), 3), restart_marker_blocks=1),
    jpeg(scene((64, 48), 4))[:2] + exif_with_thumbnail(jpeg(scene((16, 12), 5))) + jpeg(scene((64, 48), 4))[2:],
]


#: Bytes between images: anything that does not make an SOI with the image after it.
between_images = st.binary(max_size=40).filter(lambda b: b"\xff\xd8\xff" not in b and not b.endswith(b"\xff\xd8"))


@settings(max_examples=80, deadline=None)
@given(
    frames=st.lists(st.sampled_from(range(4)), min_size=1, max_size=5),
    between=st.lists(between_images, min_size=6, max_size=6),
    cuts=st.lists(st.integers(0, 60000), max_size=8),
)
def test_the_splitter_finds_every_image_however_the_stream_is_chunked(
    frames: list[int], between: list[bytes], cuts: list[int]
) -> None:
    """Any chunking of a stream of images with bytes between them gives back exactly the images."""
    images = SPLITTER_SAMPLES
    stream = b"".join(between[i] + images[f] for i, f in enumerate(frames)) + between[-1]
    splitter = JpegSplitter()
    found: list[bytes] = []
    start = 0
    for cut in sorted({min(c, len(stream)) for c in cuts}) + [len(stream)]:
        found += splitter.feed(stream[start:cut])
        start = cut
    splitter.finish()
    assert found == [images[f] for f in frames] and splitter.damaged == 0


def test_an_image_without_an_end_is_given_up_at_the_size_limit() -> None:
    splitter = JpegSplitter(max_bytes=10_000)
    endless = b"\xff\xd8\xff\xda\x00\x02" + b"\x11" * 20_000
    good = SPLITTER_SAMPLES[0]
    assert splitter.feed(endless) == [] and splitter.damaged == 1
    assert splitter.feed(good) == [good]


def test_the_module_loads_neither_opencv_nor_numpy(tmp_path: Path) -> None:
    video = tmp_path / "few.mjpeg"
    video.write_bytes(b"".join(jpeg(scene((64, 48), seed)) for seed in range(3)))
    probe = (
        "import json, sys\n"
        "from kiosk.devices.scanner.frames import open_frames, CameraUnavailable\n"
        f"reader = open_frames({str(video)!r}, size=(64, 48), fps=1000)\n"
        "frames = [reader.read(1.0) for _ in range(3)]\n"
        "reader.close()\n"
        "try:\n    open_frames('/dev/video-not-here', size=(64, 48), fps=15)\n"
        "except CameraUnavailable:\n    pass\n"
        "print(json.dumps([[f.mode, list(f.size)] for f in frames] + sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('cv2', 'numpy'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == [["L", [64, 48]]] * 3
