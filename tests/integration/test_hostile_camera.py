"""Hostile camera input against the whole running kiosk: a camera file (read by the same frame
reader and decoder as a V4L2 camera's frames) that begins with what a broken camera or a tampered
file could hold: garbage, frames cut short, markers without a frame, segment lengths past the end,
a picture too large to decode, a frame that is noise. Then a customer shows a code: it must get its
voucher, once; nothing is logged with a traceback or a secret; and the next customer is served."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.config import Config
from kiosk.sim.camera_frames import moving_code_video
from tests.integration.hostile import KioskHarness, fresh_code

pytestmark = pytest.mark.integration


def _jpeg(picture: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def _hostile() -> list[bytes]:
    noise = np.random.default_rng(3).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    good = _jpeg(noise)
    return [
        os.urandom(5000),
        b"\xff\xd8" * 2000,  # starts of frames and nothing else
        good[: len(good) // 3],  # a frame cut short
        b"\xff\xd8\xff\xe1\xff\xff" + b"\x00" * 100,  # a segment claiming 64 KB
        b"\xff\xd8\xff\xdb\x00\x02\xff\xda\x00\x02" + b"\xff\x00" * 1000 + b"\xff\xd9",  # a scan without tables
        _jpeg(np.full((4000, 5000, 3), 200, np.uint8)),  # 20 megapixels
        good,  # a whole frame with no code in it
        b"\x1b[2J\x1b]0;title\x07" * 50,
    ]


def test_a_code_shown_after_a_hostile_camera_stream_gets_its_voucher(tmp_path: Path) -> None:
    video = tmp_path / "camera.mjpeg"

    def camera(config: Config) -> Config:
        return dataclasses.replace(
            config, scanner=dataclasses.replace(config.scanner, type="camera", device=str(video))
        )

    with KioskHarness(tmp_path / "kiosk", adjust=camera) as harness:
        code = fresh_code()
        shown = [_jpeg(frame) for frame in moving_code_video(code, "QRCode", 18, seed=4)]

        def show(_: str) -> None:  # the camera, absent so far, starts delivering
            part = video.with_suffix(".part")
            noise = _jpeg(np.random.default_rng(5).integers(0, 256, (720, 1280, 3), dtype=np.uint8))
            part.write_bytes(b"".join([noise, *_hostile(), *shown, *_hostile()]))  # a stream starts with a frame
            part.rename(video)

        report = harness.scan(code, timeout_s=30, through=show)
        assert report.status == "issued" and report.voucher is not None
        harness.quiet(1.0)
        sent = [entry["barcode"] for entry in harness.world.backend.store.scan_log()]
        assert sent.count(code) == 1  # held up for 18 frames, read once
        source = harness.kiosk.sources[0]
        assert source.figures().frames_damaged >= 3  # type: ignore[attr-defined]
        assert harness.log_problems([report.voucher.code]) == []
        following = fresh_code()
        assert harness.scan(following).status == "issued"
