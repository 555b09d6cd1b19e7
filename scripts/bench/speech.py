#!/usr/bin/env python3
"""Speech never delays the voucher: scan → voucher painted p95 with speech on and off, one run.

The whole kiosk on loopback (stand-in backend, virtual scanner, the page in headless Chromium) with
the speech adapter following the screen as the runtime will wire it. Scans alternate between speech
on and off, so both halves share the machine's state. With speech on, espeak-ng really synthesizes
each screen's text (to a WAV that is thrown away: a test machine has no sound card), so its CPU
use competes with the kiosk as it would on the Pi.
Run: .venv/bin/python scripts/bench/speech.py [SCANS]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kiosk.app import ScanReport
from kiosk.config import load_config
from kiosk.core.flow import Screen
from kiosk.devices.audio.speech import EspeakSynthesizer, Speech
from kiosk.devices.screen.browser import HeadlessBrowser
from kiosk.presentation.view import build_screen_view
from kiosk.runtime import open_kiosk
from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK
from kiosk.sim.kiosk_config import write_kiosk_config
from kiosk.sim.virtual_scanner import VirtualScanner
from kiosk.sim.world import demo_world


class SynthesizeOnly(EspeakSynthesizer):
    """espeak-ng's whole synthesis through the voice worker, as the kiosk speaks; the sound discarded."""

    def __init__(self) -> None:
        super().__init__(play=False)
        self.texts = 0

    async def say(self, text: str, voice: str) -> None:
        await super().say(text, voice)
        self.texts += 1


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


async def bench(scans: int) -> tuple[dict[bool, list[float]], int]:
    times: dict[bool, list[float]] = {True: [], False: []}
    synthesizer = SynthesizeOnly()
    with (
        tempfile.TemporaryDirectory() as work,
        demo_world(Path(work)) as world,
        VirtualScanner(terminator="cr") as scanner,
    ):
        path = write_kiosk_config(
            Path(work) / "kiosk.toml",
            backend_url=world.url,
            token=DEMO_KIOSK_TOKEN,
            drop_point=DROP_POINT_DK,
            scanner_device=scanner.path,
            screen_type="web",
        )
        config = load_config(path)
        done: asyncio.Queue[tuple[ScanReport, float]] = asyncio.Queue()
        report = lambda r: done.put_nowait((r, time.perf_counter()))  # noqa: E731
        speech = Speech(synthesizer, private=True)
        speaking = {"on": False}

        def follow(screen: Screen) -> None:
            if speaking["on"]:
                speech(build_screen_view(screen, screen.locale, config.kiosk.timezone))

        async with open_kiosk(config, on_report=report) as kiosk, HeadlessBrowser(800, 480) as browser:
            kiosk.app.on_screen = follow
            voice = asyncio.create_task(speech.run())
            await kiosk.wait_ready()
            await browser.navigate(kiosk.screen.url)
            await browser.wait_for("document.body.dataset.state === 'idle'")
            for n in range(scans):
                speaking["on"] = n % 2 == 0
                started = time.perf_counter()
                scanner.type(f"10HS{n + 1:04d}" if n % 4 < 2 else f"20GB{n + 1:04d}")
                result, finished = await asyncio.wait_for(done.get(), 10)
                if result.status == "issued":
                    times[speaking["on"]].append((finished - started) * 1000)
                await asyncio.sleep(0.3)  # the voice is still at it when the next scan comes
            voice.cancel()
    return times, synthesizer.texts


def main() -> None:
    scans = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    times, texts = asyncio.run(bench(scans))
    for on in (False, True):
        values = times[on]
        print(
            f"scan typed -> voucher painted, speech {'on ' if on else 'off'}: n={len(values)} "
            f"median {statistics.median(values):.1f} ms, p95 {p95(values):.1f} ms, max {max(values):.1f} ms"
        )
    print(f"texts synthesized to the end (the others were interrupted by the next scan): {texts}")


if __name__ == "__main__":
    main()
