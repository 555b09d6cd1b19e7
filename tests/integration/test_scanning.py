"""Scan sources against real parts: a camera read by the kiosk's Motion-JPEG reader from a video
file OpenCV wrote, the serial source through an unplugged and replugged pseudo-terminal, HID
through uinput where the machine has it, and ``kiosk decode`` on the corpus."""

from __future__ import annotations

import asyncio
import json
import os
import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.devices.scanner.camera_source import CameraScanSource
from kiosk.devices.scanner.scan_filter import ScanFilter
from kiosk.devices.scanner.serial_source import SerialScanSource
from kiosk.sim.camera_frames import VALIDATION_SEED, camera_frames, moving_code_video
from kiosk.sim.virtual_scanner import VirtualScanner
from tests.conftest import REPO, run_kiosk, wait_until

pytestmark = pytest.mark.integration
SAMPLES = REPO / "tests" / "data" / "corpus"


async def collect(source, until: int, timeout_s: float = 10.0) -> list[str]:
    seen: list[str] = []
    source.start(asyncio.get_running_loop(), seen.append)
    try:
        for _ in range(int(timeout_s / 0.02)):
            if len(seen) >= until:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # anything counted twice would arrive now
    finally:
        source.stop()
    return seen


def test_camera_counts_each_code_held_up_once_from_a_video(tmp_path: Path) -> None:
    """Three codes slide into view one after another, blurred until they settle; each is read once."""
    codes = [("QRCode", "https://re-zip.com/p/10HS01JAYSCS07SVDQANFS61TF0XJN"), ("DataMatrix", "20GB0042")]
    codes.append(("Code128", "30PH01JAYSCS07SVDQANFS61TF0XJN"))
    video = tmp_path / "camera.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 15, (1280, 720))
    blank = np.full((720, 1280, 3), 128, np.uint8)
    for seed, (symbology, text) in enumerate(codes):
        for frame in moving_code_video(text, symbology, 18, seed=seed):  # 1.2 s in front of the camera
            writer.write(frame)
        for _ in range(4):
            writer.write(blank)
    writer.release()
    source = CameraScanSource(str(video), fps=15, scan_filter=ScanFilter(debounce_s=3.0))
    seen = asyncio.run(collect(source, until=3))
    assert seen == [text for _, text in codes]  # each once, in order, though each filled a dozen frames


def test_decoding_falls_behind_by_dropping_frames_not_queueing(tmp_path: Path) -> None:
    video = tmp_path / "fast.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (1280, 720))
    for frame, _ in camera_frames(60, seed=VALIDATION_SEED):
        writer.write(frame)
    writer.release()
    source = CameraScanSource(str(video), fps=1000)  # capture far faster than any decoder

    async def play_to_the_end() -> None:
        source.start(asyncio.get_running_loop(), lambda code: None)
        try:
            await wait_until(lambda: source.state == "ended", timeout_s=60)
        finally:
            source.stop()

    asyncio.run(play_to_the_end())
    assert source.frames_captured == 60
    assert source.frames_decoded < source.frames_captured
    figures = source.figures()
    assert figures.resolution == (1280, 720) and figures.frames_captured == 60
    assert figures.frames_dropped > 0 and figures.frames_decoded + figures.frames_dropped <= 60
    assert figures.decode_ms_median is not None and figures.decode_ms_p95 is not None
    assert figures.decode_ms_p95 >= figures.decode_ms_median


def test_serial_scanner_unplugged_and_plugged_back_in(tmp_path: Path) -> None:
    link = tmp_path / "serial" / "by-id" / "usb-Scanner-if00"
    link.parent.mkdir(parents=True)

    async def scenario() -> tuple[list[str], list[str]]:
        first = VirtualScanner(terminator="cr")
        link.symlink_to(first.path)
        seen: list[str] = []
        states: list[str] = []
        source = SerialScanSource(str(link), reopen_interval_s=0.1, scan_filter=ScanFilter(debounce_s=0))
        source.start(asyncio.get_running_loop(), seen.append)
        try:
            await wait_until(lambda: source.state == "open")
            first.type("10HS0001")
            await wait_until(lambda: seen == ["10HS0001"])
            first.close()
            link.unlink()
            await wait_until(lambda: source.state == "missing")
            states.append(source.state)
            second = VirtualScanner(terminator="cr")
            link.symlink_to(second.path)
            await wait_until(lambda: source.state == "open")
            states.append(source.state)
            second.type("10HS0002")
            await wait_until(lambda: len(seen) == 2)
            second.close()
        finally:
            source.stop()
        return seen, states

    seen, states = asyncio.run(scenario())
    assert seen == ["10HS0001", "10HS0002"] and states == ["missing", "open"]


def test_garbage_on_the_serial_line_never_reaches_the_backend(backend, tmp_path: Path) -> None:
    from kiosk.config import load_config
    from kiosk.runtime import open_kiosk
    from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK, sample_code
    from kiosk.sim.kiosk_config import write_kiosk_config

    garbage = random.Random(1).randbytes(20000)
    code = sample_code("on_demand", 2)
    before = len(backend.state()["scans"])

    async def scenario() -> list:
        reports = []
        with VirtualScanner(terminator="cr") as scanner:
            config = load_config(
                write_kiosk_config(
                    tmp_path / "kiosk.toml",
                    backend_url=backend.url,
                    token=DEMO_KIOSK_TOKEN,
                    drop_point=DROP_POINT_DK,
                    scanner_device=scanner.path,
                    screen_type="none",
                )
            )
            async with open_kiosk(config, on_report=reports.append) as kiosk:
                await kiosk.wait_ready()
                scanner.send(garbage)  # random bytes, including CR, LF and Tab now and then
                scanner.send(b"A" * 65536)  # a 64 KiB line with no terminator
                scanner.send(b"\r\x00\x1b[2J\xff\xfe\r5701234567899\r")  # controls, non-UTF-8, an EAN
                await asyncio.sleep(1.0)
                scanner.type(code)
                await wait_until(lambda: any(r.code == code for r in reports), 10)
        return reports

    reports = asyncio.run(scenario())
    scans = backend.state()["scans"][before:]
    assert [s["barcode"] for s in scans] == [code]  # only the real code was ever sent
    assert reports[-1].status == "issued"
    assert any(r.status == "invalid" for r in reports)  # the EAN got its "not a RE-ZIP code" notice


@pytest.mark.skipif(not os.path.exists("/dev/uinput"), reason="no /dev/uinput on this machine")
def test_hid_scanner_through_uinput() -> None:  # pragma: no cover - runs where uinput exists
    import evdev
    from evdev import ecodes

    from kiosk.devices.scanner.hid_source import HidScanSource

    async def scenario() -> list[str]:
        with evdev.UInput(name="kiosk-test-scanner") as device:
            source = HidScanSource("name:^kiosk-test-scanner$", scan_filter=ScanFilter(debounce_s=0), poll_s=0.1)
            seen: list[str] = []
            source.start(asyncio.get_running_loop(), seen.append)
            await wait_until(lambda: source.state == "open")
            for key in (
                "KEY_1",
                "KEY_0",
                "KEY_LEFTSHIFT",
                "KEY_H",
                "KEY_S",
                "KEY_LEFTSHIFT",
                "KEY_4",
                "KEY_2",
                "KEY_ENTER",
            ):
                code = ecodes.ecodes[key]
                device.write(ecodes.EV_KEY, code, 1)
                if key != "KEY_LEFTSHIFT":
                    device.write(ecodes.EV_KEY, code, 0)
                device.syn()
            await wait_until(lambda: seen)
            source.stop()
            return seen

    assert asyncio.run(scenario()) == ["10HS42"]


def test_decode_command_on_the_corpus() -> None:
    qr, ean, nothing = SAMPLES / "qrcode-1.webp", SAMPLES / "ean13-10.webp", SAMPLES / "no-barcode.png"
    result = run_kiosk("decode", "--json", str(qr), str(ean), str(nothing))
    assert result.returncode == 0, result.stderr
    docs = json.loads(result.stdout)
    assert [d["file"] for d in docs] == [str(qr), str(ean), str(nothing)]
    assert docs[0]["codes"][0]["text"] == (qr.with_suffix(".txt")).read_bytes().decode()
    assert docs[0]["codes"][0]["format"] == "QRCode"
    assert docs[1]["codes"][0]["text"] == (ean.with_suffix(".txt")).read_bytes().decode().strip()
    assert docs[2]["codes"] == [] and all(d["ms"] > 0 for d in docs)
    missing = run_kiosk("decode", str(qr), "/nonexistent.png")
    assert missing.returncode == 1 and "cannot read" in missing.stderr
