#!/usr/bin/env python3
"""The cost of the fleet parts (kiosk/fleet: metrics, health reports) on the scan path, and the
kiosk's resident memory.

Latency: two whole kiosks (open_kiosk, web screen with a page that acknowledges every frame, file
printer) against one stand-in backend in this process, one with metrics scraped every second and
health reports every 5 s, one with both off; scans alternate between them, so both meet the same
machine. Prints scan → voucher visible (the page's acknowledgement) p50/p95 for each and how far
apart they are (goal: p95 within 2 %).

Memory: a kiosk of its own in a child process that imports only what the kiosk does, with a camera
source (the kiosk's own Motion-JPEG reader playing, in a loop, a short video of synthetic frames
blurred past reading, drawn by OpenCV in the parent) beside the scans, metrics and reports on, and
the environment of the systemd unit (hardware/systemd/rezip-kiosk.service): VmRSS at idle and after
every 1,000 scans (goals: at most 120 MB, no growth from 1,000 to 5,000), with its anonymous and
file-backed parts.

Run: .venv/bin/python scripts/bench/fleet.py [--scans N] [--memory-scans N]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from kiosk.app import ScanReport
from kiosk.config import Config, HealthSection, MetricsSection, load_config
from kiosk.runtime import RunningKiosk, open_kiosk
from kiosk.sim.backend_store import new_ulid
from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK, SHOPS
from kiosk.sim.kiosk_config import write_kiosk_config


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def code() -> str:
    return SHOPS["sko"].prefix + new_ulid()  # the shop whose on-demand pool never runs out


def kiosk_config(folder: Path, backend_url: str, *, fleet: bool, hardware_id: str) -> Config:
    config = load_config(
        write_kiosk_config(
            folder / "kiosk.toml",
            backend_url=backend_url,
            token=DEMO_KIOSK_TOKEN,
            drop_point=DROP_POINT_DK,
            screen_type="web",
        )
    )
    config = dataclasses.replace(
        config,
        kiosk=dataclasses.replace(config.kiosk, hardware_id=hardware_id),
        flow=dataclasses.replace(config.flow, voucher_display_s=600.0),
        offline=dataclasses.replace(config.offline, max_issuances=100_000),
    )
    if fleet:
        return dataclasses.replace(config, health=HealthSection(interval_s=5.0))
    return dataclasses.replace(config, metrics=MetricsSection(enabled=False), health=HealthSection(enabled=False))


async def acknowledge(kiosk: RunningKiosk) -> None:
    """A page that paints at once: it reads the event stream and acknowledges every frame. Through
    aiohttp's client, which the kiosk's page server has imported anyway: the memory run's process
    then holds no more than the kiosk's own (the real page is a browser in a process of its own)."""
    port = kiosk.screen.port  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    forever = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(timeout=forever) as http, http.get(base + "/events") as events:
        async for line in events.content:
            if line.startswith(b"data: "):
                seq = json.loads(line[6:])["seq"]
                async with http.post(base + "/ack", json={"seq": seq}, headers={"Origin": base}) as answer:
                    answer.raise_for_status()


async def scrape_every_second(kiosk: RunningKiosk) -> None:
    url = f"http://127.0.0.1:{kiosk.screen.port}/metrics"  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(url) as answer:
                answer.raise_for_status()
                await answer.read()
            await asyncio.sleep(1.0)


async def one_scan(kiosk: RunningKiosk, reports: asyncio.Queue[ScanReport]) -> float:
    text = code()
    kiosk.app.scan(text)
    while True:
        report = await asyncio.wait_for(reports.get(), 30)
        if report.code == text:
            assert report.status == "issued", report.detail
            return report.ms["total"]


async def latency(scans: int) -> None:
    from kiosk.sim.world import demo_world  # the memory run's kiosk process does without it

    with tempfile.TemporaryDirectory() as work, demo_world(Path(work) / "world", voucherify=False) as world:
        with_fleet = kiosk_config(Path(work) / "a", world.url, fleet=True, hardware_id="bench-with")
        without = kiosk_config(Path(work) / "b", world.url, fleet=False, hardware_id="bench-without")
        queue_a: asyncio.Queue[ScanReport] = asyncio.Queue()
        queue_b: asyncio.Queue[ScanReport] = asyncio.Queue()
        async with (
            open_kiosk(with_fleet, on_report=queue_a.put_nowait) as a,
            open_kiosk(without, on_report=queue_b.put_nowait) as b,
        ):
            helpers = [asyncio.create_task(acknowledge(k)) for k in (a, b)] + [
                asyncio.create_task(scrape_every_second(a))
            ]
            await asyncio.sleep(1.0)
            times: dict[str, list[float]] = {"with": [], "without": []}
            for _ in range(10):  # warm both up
                await one_scan(a, queue_a)
                await one_scan(b, queue_b)
            for round_ in range(scans):
                pair = [("with", a, queue_a), ("without", b, queue_b)]
                for name, kiosk, reports in pair if round_ % 2 == 0 else reversed(pair):
                    times[name].append(await one_scan(kiosk, reports))
            reporter = a.fleet.reporter if a.fleet is not None else None
            report_bytes = len(json.dumps(a.fleet.status_document()).encode()) if a.fleet is not None else 0
            loop_ms = _loop_cost(a)
            for task in helpers:
                task.cancel()
    print(f"scan -> voucher visible, {scans} scans each, alternating (ms):")
    for name, values in times.items():
        print(
            f"  {name:7s} metrics+reports  p50 {statistics.median(values):6.1f}  p95 {percentile(values, 0.95):6.1f}"
            f"  max {max(values):6.1f}"
        )
    p95_with, p95_without = percentile(times["with"], 0.95), percentile(times["without"], 0.95)
    print(f"  p95 apart: {100 * (p95_with - p95_without) / p95_without:+.1f} % (goal: within 2 %)")
    if reporter is not None:
        print(f"  health reports sent meanwhile: {reporter.sent}, {report_bytes} bytes each (JSON)")
    print(
        "  event-loop time per call (ms, median of 200): "
        + ", ".join(f"{name} {value:.2f}" for name, value in loop_ms.items())
    )


def _loop_cost(kiosk: RunningKiosk) -> dict[str, float]:
    """What the fleet parts take from the event loop (the scan path's loop) each time they run."""
    fleet = kiosk.fleet
    assert fleet is not None and fleet.metrics is not None
    costs = {}
    for name, call in (("/metrics render", fleet.metrics.render), ("status document", fleet.status_document)):
        times = []
        for _ in range(200):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
        costs[name] = statistics.median(times)
    return costs


def rss_mb() -> list[float]:
    """VmRSS and its two parts, anonymous (the process's own) and file-backed (pages of the
    libraries' code and data the process has touched, which the kernel can drop and read again)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return [int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "RssAnon", "RssFile")]


def write_camera_video(path: Path) -> None:
    """The camera's view: the synthetic frames blurred past reading. A kiosk's camera watches an
    empty slot most of its life, so the decoder runs all its passes on every frame and finds
    nothing; a readable code would also become a scan of its own beside the benchmark's. Drawn in
    the parent, so the kiosk's process holds nothing the kiosk would not."""
    import cv2

    from kiosk.sim.camera_frames import TUNING_SEED, camera_frames

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 15, (1280, 720))
    for frame, _ in camera_frames(30, seed=TUNING_SEED):
        writer.write(cv2.GaussianBlur(frame, (0, 0), 12))
    writer.release()


async def memory_child(scans: int, video: Path) -> None:
    """The kiosk alone in this process: the stand-in backend runs as ``kiosk sim backend``."""
    with tempfile.TemporaryDirectory() as work:
        backend = subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli", "sim", "backend", "--db", f"{work}/backend.sqlite", "--seed", "demo"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert backend.stdout is not None
            url = json.loads(backend.stdout.readline())["url"]
            print(json.dumps(await _kiosk_memory(Path(work), url, scans, video)))
        finally:
            backend.terminate()
            backend.wait(10)


async def _kiosk_memory(work: Path, backend_url: str, scans: int, video: Path) -> dict[str, object]:
    config = kiosk_config(work / "k", backend_url, fleet=True, hardware_id="bench-memory")
    config = dataclasses.replace(config, scanner=dataclasses.replace(config.scanner, type="camera", device=str(video)))
    reports: asyncio.Queue[ScanReport] = asyncio.Queue()
    async with open_kiosk(config, on_report=reports.put_nowait) as kiosk:
        kiosk.sources[0].loop_file = True  # type: ignore[attr-defined]  # the camera never stops delivering
        page = asyncio.create_task(acknowledge(kiosk))
        await asyncio.sleep(3.0)
        figures: dict[str, object] = {"idle": rss_mb()}
        started = time.perf_counter()
        for done in range(1, scans + 1):
            await one_scan(kiosk, reports)
            if done % 1000 == 0:
                figures[f"after {done} scans"] = rss_mb()
        figures["seconds"] = time.perf_counter() - started
        figures["frames decoded"] = kiosk.sources[0].figures().frames_decoded  # type: ignore[attr-defined]
        page.cancel()
    return figures


def unit_environment() -> dict[str, str]:
    """The ``Environment=`` settings of the kiosk's systemd unit."""
    unit = Path(__file__).resolve().parents[2] / "hardware/systemd/rezip-kiosk.service"
    lines = unit.read_text().splitlines()
    settings = [line.removeprefix("Environment=").split() for line in lines if line.startswith("Environment=")]
    return dict(setting.split("=", 1) for line in settings for setting in line)


def memory(scans: int) -> None:
    """The kiosk in a process of its own, which imports and draws nothing the kiosk does not."""
    with tempfile.TemporaryDirectory() as work:
        video = Path(work) / "camera.avi"
        write_camera_video(video)
        child = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(scans), "--video", str(video)],
            capture_output=True,
            text=True,
            timeout=3600,
            env={**os.environ, **unit_environment()},
        )
    if child.returncode != 0:
        print("memory run failed:", child.stderr[-2000:])
        return
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    seconds = figures.pop("seconds")
    frames = figures.pop("frames decoded")
    print(
        f"resident memory, one kiosk with a camera source, metrics and reports on, backend in its own process"
        f" ({seconds:.0f} s of scans, {frames} camera frames decoded):"
    )
    for name, (total, anonymous, files) in figures.items():
        print(f"  {name:18s} {total:6.1f} MB  (anonymous {anonymous:5.1f}, file-backed {files:5.1f})")
    if "after 1000 scans" in figures and "after 5000 scans" in figures:
        print(
            f"  growth 1,000 -> 5,000 scans: {figures['after 5000 scans'][0] - figures['after 1000 scans'][0]:+.1f} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scans", type=int, default=300, help="scans per kiosk in the latency comparison (0: skip it)")
    parser.add_argument("--memory-scans", type=int, default=5000, help="scans in the memory run (0: skip it)")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--video", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child is not None:
        asyncio.run(memory_child(args.memory_child, args.video))
        return
    if args.scans:
        asyncio.run(latency(args.scans))
    if args.memory_scans:
        memory(args.memory_scans)


if __name__ == "__main__":
    main()
