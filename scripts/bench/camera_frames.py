#!/usr/bin/env python3
"""Camera frames without OpenCV (kiosk/devices/scanner/frames.py): the cost of one greyscale frame
at 1280x720 through read() from a modelled V4L2 camera (select, DQBUF, copy, QBUF, conversion)
for GREY, YUYV and Motion-JPEG, against OpenCV decoding the same JPEG and making it grey; a
Motion-JPEG .avi played as fast as it splits and decodes; and the resident memory of a process
that has read frames through the module, against one that has imported cv2 and numpy.

Run: .venv/bin/python scripts/bench/camera_frames.py [N]
"""

from __future__ import annotations

import io
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kiosk.devices.scanner.frames import V4l2Frames, open_frames  # noqa: E402
from tests.unit.test_camera_frames_sources import scene, yuyv  # noqa: E402
from tests.uvc_model import ModelledUvcCamera  # noqa: E402

SIZE = (1280, 720)


def summary(name: str, values: list[float]) -> None:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    print(f"{name}: median {statistics.median(values):.2f} ms, p95 {p95:.2f} ms (n={len(values)})")


def timed(action: Callable[[], object], n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return times


def through_camera(pixel_format: str, frame: bytes, n: int) -> list[float]:
    camera = ModelledUvcCamera(formats={pixel_format: [SIZE]})
    reader = V4l2Frames.open("/dev/video0", size=SIZE, fps=30, io_=camera)
    times = []
    for _ in range(n):
        camera.deliver(frame)
        started = time.perf_counter()
        assert reader.read(1.0) is not None
        times.append((time.perf_counter() - started) * 1000)
    reader.close()
    return times


def resident_kb(code: str) -> int:
    probe = code + "\nprint(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1])"
    return int(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)


def main(n: int) -> None:
    picture = scene(SIZE, 1)
    out = io.BytesIO()
    picture.convert("RGB").save(out, "JPEG", quality=85)
    jpeg = out.getvalue()
    summary("read() GREY 1280x720", through_camera("GREY", picture.tobytes(), n))
    summary("read() YUYV 1280x720", through_camera("YUYV", yuyv(picture), n))
    summary(f"read() MJPG 1280x720 ({len(jpeg) // 1024} KiB, luma only)", through_camera("MJPG", jpeg, n))
    summary("PIL full decode + convert('L')", timed(lambda: Image.open(io.BytesIO(jpeg)).convert("L"), n))
    import cv2
    import numpy as np

    data = np.frombuffer(jpeg, np.uint8)
    summary("cv2.imdecode + cvtColor GRAY", timed(lambda: cv2.cvtColor(cv2.imdecode(data, 1), cv2.COLOR_BGR2GRAY), n))
    summary("cv2.imdecode IMREAD_GRAYSCALE", timed(lambda: cv2.imdecode(data, cv2.IMREAD_GRAYSCALE), n))

    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "bench.avi"
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 15, SIZE)
        frame = cv2.cvtColor(np.asarray(picture), cv2.COLOR_GRAY2BGR)
        for _ in range(n):
            writer.write(frame)
        writer.release()
        reader = open_frames(str(video), size=SIZE, fps=100_000)
        started = time.perf_counter()
        for _ in range(n - 1):
            assert reader.read(1.0) is not None
        elapsed = time.perf_counter() - started
        reader.close()
        print(f"MJPG .avi split + decoded: {(n - 1) / elapsed:.0f} frames/s ({elapsed / (n - 1) * 1000:.2f} ms each)")
        frames_kb = resident_kb(
            f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
            "from kiosk.devices.scanner.frames import open_frames\n"
            f"r = open_frames({str(video)!r}, size=(1280, 720), fps=100000)\n"
            "f = [r.read(1.0) for _ in range(10)]"
        )
    pil_kb = resident_kb("import PIL.Image, PIL.JpegImagePlugin")
    cv2_kb = resident_kb("import cv2, numpy")
    print(f"resident: PIL only {pil_kb / 1024:.1f} MB; frames.py after 10 frames {frames_kb / 1024:.1f} MB;")
    print(f"          cv2 + numpy imported, no frame yet {cv2_kb / 1024:.1f} MB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
