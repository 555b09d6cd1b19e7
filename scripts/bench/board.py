#!/usr/bin/env python3
"""I/O board figures on the simulator: scanner UART → scan at the kiosk's sink, slot edge → deposit,
kiosk lights command → the board's PWM, the board's start to its hello, and the flash tool's run.
The board here is MicroPython's WebAssembly port under node, so these are upper bounds for the
firmware's own logic plus the link; UART and USB transfer times of real hardware come on top.

Run: .venv/bin/python scripts/bench/board.py [N]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from kiosk.board import link
from kiosk.board.signals import Signals
from kiosk.devices.board.io_board import IoBoard
from kiosk.devices.scanner.scan_filter import ScanFilter
from kiosk.sim.virtual_board import VirtualBoard
from kiosk.sim.virtual_repl import VirtualRepl
from kiosk.tools.flash import main as flash


def summary(name: str, values: list[float]) -> None:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    print(f"{name}: median {statistics.median(values):.1f} ms, p95 {p95:.1f} ms (n={len(values)})")


async def measure(n: int) -> None:
    started = time.perf_counter()
    with VirtualBoard() as board:
        board.wait_for(lambda: any(kind == link.HELLO for kind, _, _ in board.sent), 10)
        print(
            f"board start → hello: {(time.perf_counter() - started) * 1000:.0f} ms (node + WebAssembly load included)"
        )
        got: list[tuple[str, float]] = []
        driver = IoBoard(board.device, scan_filter=ScanFilter(debounce_s=0))
        driver.on_deposit = lambda: got.append(("deposit", time.perf_counter()))
        driver.start(asyncio.get_running_loop(), lambda text: got.append((text, time.perf_counter())))
        while driver.state != "open":
            await asyncio.sleep(0.005)
        scans, deposits, lights = [], [], []
        for index in range(n):
            code = f"10HSBENCH{index:04d}"
            sent = time.perf_counter()
            board.scan(code)
            while not any(text == code for text, _ in got):
                await asyncio.sleep(0.0005)
            scans.append((next(at for text, at in got if text == code) - sent) * 1000)
        for _ in range(max(5, n // 5)):
            before = len([1 for text, _ in got if text == "deposit"])
            board.slot_pass(0.03)
            sent = time.perf_counter() - 0.03  # the beam cleared 30 ms after it was blocked
            while len([1 for text, _ in got if text == "deposit"]) == before:
                await asyncio.sleep(0.0005)
            deposits.append((got[-1][1] - sent - 0.03) * 1000)
        for index in range(max(5, n // 5)):
            name, colour = ("voucher", (0, 255, 0)) if index % 2 else ("notice", (255, 140, 0))
            sent = time.perf_counter()
            driver.signal(Signals(name, None))
            while board.lights != colour:
                await asyncio.sleep(0.0005)
            lights.append((time.perf_counter() - sent) * 1000)
        driver.stop()
    summary("scan on the scanner UART → kiosk sink", scans)
    summary("slot beam clear → kiosk deposit (15 ms debounce included)", deposits)
    summary("kiosk lights command → board PWM", lights)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    asyncio.run(measure(n))
    with VirtualRepl() as repl:
        started = time.perf_counter()
        code = flash(["--board", "rp2040", "--port", repl.device, "--no-packages"])
        print(
            f"flash-firmware (application, 9 files, verify) on the REPL simulator: {time.perf_counter() - started:.1f} s, exit {code}"
        )


if __name__ == "__main__":
    main()
