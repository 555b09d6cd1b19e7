"""``kiosk demo``: the whole kiosk on simulated hardware, against the seeded stand-in backend.

Started here, all on loopback: the stand-in RE-ZIP backend and the stand-in shop webhook (real HTTP
servers, SQLite in a temporary folder), Nordlys Kaffe's Voucherify-backed shop (a stand-in Voucherify,
a real ``kiosk shop webhook`` and the shop's checkout, its static pool filled by ``kiosk shop
export-batch``), a virtual scanner (a pseudo-terminal), and the kiosk itself, reading the scanner
through pyserial and writing its screen and print jobs into the output folder.
With ``board``, scans go through the virtual I/O board instead (the real firmware in WebAssembly
MicroPython) with a drop-slot sensor, and the demo drops each packaging when the screen asks for it.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TextIO

from kiosk.app import ScanReport
from kiosk.config import load_config
from kiosk.core.flow import DroppedScan, Flow, State
from kiosk.presentation.format import format_discount
from kiosk.presentation.qr import qr_terminal
from kiosk.recording import Recorder
from kiosk.runtime import open_kiosk
from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK, sample_codes
from kiosk.sim.kiosk_config import write_kiosk_config
from kiosk.sim.virtual_board import VirtualBoard, simulator_available
from kiosk.sim.virtual_scanner import VirtualScanner
from kiosk.sim.world import demo_world

__all__ = ["run_demo", "list_codes"]

#: How long the demo waits for one scan's result before it says so and moves on.
_SCAN_WAIT_S = 10.0


def list_codes(out: TextIO) -> None:
    for item in sample_codes():
        print(f"{item['code']}  {item['note']}", file=out)


def run_demo(
    out_dir: Path, scans: list[str] | None, *, stdin: TextIO, out: TextIO, offline: bool = False, board: bool = False
) -> int:
    if board and not simulator_available():
        print(
            "kiosk demo --board: the board simulator needs node and firmware/node_modules (run: cd firmware && npm ci)",
            file=out,
        )
        return 2
    return asyncio.run(_demo(out_dir, scans, stdin, out, offline, board))


async def _demo(
    out_dir: Path, scans: list[str] | None, stdin: TextIO, out: TextIO, offline: bool, with_board: bool
) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("[0-9][0-9][0-9]-*"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="kiosk-demo-") as work, demo_world(Path(work)) as world:
        workdir, server = Path(work), world.server
        scanner = VirtualScanner(terminator="cr")
        board = VirtualBoard().start() if with_board else None
        config_path = write_kiosk_config(
            workdir / "kiosk.toml",
            backend_url=server.url,
            token=DEMO_KIOSK_TOKEN,
            drop_point=DROP_POINT_DK,
            scanner_device=None if board else scanner.path,
            board_device=board.device if board else None,
            slot_sensor=board is not None,
        )
        config = load_config(config_path)
        recorder = Recorder(out_dir, profile=config.printer.profile)
        results: asyncio.Queue[ScanReport | DroppedScan] = asyncio.Queue()
        interactive = scans is None
        try:
            async with open_kiosk(config, on_report=results.put_nowait, on_dropped=results.put_nowait) as kiosk:
                if not await kiosk.wait_ready(timeout_s=10):
                    device = board.device if board else scanner.path
                    print(
                        f"kiosk demo: the virtual {'board' if board else 'scanner'} {device} did not answer", file=out
                    )
                    return 1
                if offline and kiosk.offline is not None:
                    report = await kiosk.offline.sync(force=True)
                    server.stop()  # the backend goes away: from now on vouchers come from the cache
                    print(f"Offline: {report.codes_added} codes cached, then the backend was stopped", file=out)
                page = getattr(kiosk.screen, "url", "none")
                reader = f"I/O board {board.device}" if board else f"scanner {scanner.path}"
                print(f"Kiosk demo: backend {server.url}, {reader}, page {page}, output {out_dir}/", file=out)
                if world.shop is not None:
                    print(
                        f"Nordlys Kaffe's kiosk shop webhook: {world.shop.service.url} (its voucher links work "
                        f"once: open one, then open it again)",
                        file=out,
                    )
                if interactive:
                    _prompt(out)
                codes = _listed(scans) if scans is not None else _stdin_codes(stdin)
                async for code in codes:
                    if kiosk.supervisor.gave_up.done():  # as kiosk run does: a broken kiosk stops
                        print(f"kiosk demo: stopping, {kiosk.supervisor.gave_up.result()}", file=out)
                        return 1
                    if board is None:
                        scanner.type(code)
                    else:
                        board.scan(code)
                        await _drop_when_asked(kiosk.app.flow, board, results, out)
                    await _await_result(results, recorder, code, interactive, out)
        finally:
            scanner.close()
            if board is not None:
                board.stop()
    return 0


async def _drop_when_asked(
    flow: Flow, board: VirtualBoard, results: asyncio.Queue[ScanReport | DroppedScan], out: TextIO
) -> None:
    """When the screen asks for the packaging, drop it in the slot (an invalid code gets no prompt)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3.0
    while loop.time() < deadline and results.empty():
        if flow.state is State.AWAITING_DEPOSIT:
            print("    drop prompt on screen, lights blue: the packaging goes into the slot", file=out)
            await asyncio.to_thread(board.slot_pass)
            return
        await asyncio.sleep(0.01)


async def _await_result(
    results: asyncio.Queue[ScanReport | DroppedScan], recorder: Recorder, code: str, interactive: bool, out: TextIO
) -> None:
    try:
        result = await asyncio.wait_for(results.get(), _SCAN_WAIT_S)
    except TimeoutError:
        print(f"    {code}: no result within {_SCAN_WAIT_S:g} s", file=out)
        return
    if isinstance(result, DroppedScan):
        print(f"    {code}: ignored ({result.reason})", file=out)
        return
    doc = recorder(result)
    number = f"{recorder.count:03d}"
    ms = doc["ms"]
    timing = (
        f"issue {ms['issue']:.0f} ms, total {ms['total']:.0f} ms" if "issue" in ms else f"total {ms['total']:.0f} ms"
    )
    if result.voucher is not None:
        voucher = result.voucher
        shop = voucher.shop.name if voucher.shop and voucher.shop.name else "?"
        discount = format_discount(voucher, "en_GB").replace("\u00a0", " ")
        print(f"{number} {code}: issued ({result.source}) {shop}: {discount}, code {voucher.code} [{timing}]", file=out)
        if interactive:
            print(qr_terminal(voucher.qr_payload), file=out)
            print(f"    QR: {voucher.qr_payload}", file=out)
    else:
        print(f"{number} {code}: {result.status} - {result.detail} [{timing}]", file=out)
    out.flush()


def _prompt(out: TextIO) -> None:
    print("Type or paste packaging codes, one per line (Ctrl-D to end). Sample codes:", file=out)
    list_codes(out)
    out.flush()


async def _listed(codes: list[str]) -> AsyncIterator[str]:
    for code in codes:
        yield code


async def _stdin_codes(stdin: TextIO) -> AsyncIterator[str]:
    """Lines typed or pasted by a person, read without blocking the kiosk's event loop."""
    while True:
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            return
        if line.strip():
            yield line.strip("\r\n")
