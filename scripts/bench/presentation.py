#!/usr/bin/env python3
"""Presentation figures: view model + QR per voucher, and scan → voucher painted in the browser.

1. Builds the view model and the page frame (formatted texts, labels, QR as SVG) for vouchers of
   every type in every locale. Goal: p95 <= 5 ms.
2. Runs the whole kiosk on loopback (stand-in backend with its shop webhook, virtual scanner read
   through pyserial, the kiosk page open in headless Chromium) and times each scan from the moment
   its code is typed into the virtual scanner to the moment the page has painted the voucher (the
   page's paint acknowledgement). Goal: p95 <= 150 ms.
Run: .venv/bin/python scripts/bench/presentation.py [SCANS]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kiosk.app import ScanReport
from kiosk.config import LOCALES, load_config
from kiosk.core.flow import Screen, State
from kiosk.core.voucher import parse_voucher
from kiosk.devices.screen.browser import HeadlessBrowser
from kiosk.presentation.page import build_frame
from kiosk.presentation.view import build_screen_view
from kiosk.runtime import open_kiosk
from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK
from kiosk.sim.kiosk_config import write_kiosk_config
from kiosk.sim.virtual_scanner import VirtualScanner
from kiosk.sim.world import demo_world


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def summary(name: str, values: list[float]) -> str:
    return (
        f"{name}: n={len(values)} median {statistics.median(values):.2f} ms, "
        f"p95 {percentile(values, 0.95):.2f} ms, max {max(values):.2f} ms"
    )


def view_model_bench(rounds: int = 100) -> list[float]:
    """Every build gets a voucher with its own code and link, so no cache can help."""
    kinds = [("amount", 5000, "DKK"), ("amount", 123456, "HUF"), ("percentage", 15, "%"), ("gift", 1, "Tote bag")]
    times = []
    for round_ in range(rounds):
        for index, locale in enumerate(LOCALES):
            kind, value, unit = kinds[(round_ + index) % len(kinds)]
            code = f"SAVE-{round_:04d}-{index}"
            voucher = parse_voucher(
                {
                    "code": code,
                    "link": f"https://shop.example/redeem?code={code}",
                    "type": kind,
                    "value": value,
                    "unit": unit,
                    "conditions": "Min. køb 200 DKK",
                    "expires_at": "2027-03-15T12:00:00Z" if round_ % 2 else None,
                    "shop": {"name": "Grøn Butik", "description": "Økologi"},
                }
            )
            started = time.perf_counter()
            view = build_screen_view(Screen(State.SHOWING_VOUCHER, voucher=voucher), locale, "Europe/Copenhagen")
            build_frame(view, seq=round_)
            times.append((time.perf_counter() - started) * 1000)
    return times


async def scan_to_paint_bench(scans: int) -> list[float]:
    times: list[float] = []
    with (
        tempfile.TemporaryDirectory() as work,
        demo_world(Path(work)) as world,
        VirtualScanner(terminator="cr") as scanner,
    ):
        config = load_config(
            write_kiosk_config(
                Path(work) / "kiosk.toml",
                backend_url=world.url,
                token=DEMO_KIOSK_TOKEN,
                drop_point=DROP_POINT_DK,
                scanner_device=scanner.path,
                screen_type="web",
            )
        )
        done: asyncio.Queue[tuple[ScanReport, float]] = asyncio.Queue()
        report = lambda r: done.put_nowait((r, time.perf_counter()))  # noqa: E731
        async with open_kiosk(config, on_report=report) as kiosk, HeadlessBrowser(800, 480) as browser:
            await kiosk.wait_ready()
            await browser.navigate(kiosk.screen.url)
            await browser.wait_for("document.body.dataset.state === 'idle'")
            for n in range(scans):
                started = time.perf_counter()
                scanner.type(f"10HS{n + 1:04d}" if n % 2 else f"20GB{n + 1:04d}")
                result, finished = await asyncio.wait_for(done.get(), 10)
                if result.status == "issued":
                    times.append((finished - started) * 1000)
    return times


def main() -> None:
    scans = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    print(summary("view model + QR frame per voucher", view_model_bench()))
    print(summary("scan typed -> voucher painted in the page", asyncio.run(scan_to_paint_bench(scans))))


if __name__ == "__main__":
    main()
