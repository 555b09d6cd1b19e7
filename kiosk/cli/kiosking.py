"""The commands that run the kiosk: ``demo``, ``run`` and ``scan``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.cli.common import Failure, config_arg, load
from kiosk.config import Config
from kiosk.logs import configure_logging
from kiosk.presentation.terminal import json_text, one_line
from kiosk.secret_files import SecretFileError

if TYPE_CHECKING:
    from kiosk.app import ScanReport
    from kiosk.cli.common import Commands
    from kiosk.runtime import RunningKiosk


__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    """Add this group's commands to the ``kiosk`` parser."""
    demo = commands.add_parser(
        "demo",
        help="run the kiosk on simulated hardware against the seeded stand-in backend",
        description="Start the seeded stand-in backend, a virtual scanner and the kiosk on loopback. "
        "With --scan, scan those codes in order and exit; otherwise read codes from stdin until EOF. "
        "For the k-th scan, NNN-screen.png, NNN-result.json and (when printed) NNN-print.bin and "
        "NNN-print.png are written to the output folder.",
    )
    demo.add_argument("--out", type=Path, default=Path("demo-out"), help="output folder (default ./demo-out)")
    demo.add_argument("--scan", nargs="+", action="extend", metavar="CODE", help="codes to scan, in order")
    demo.add_argument("--list-codes", action="store_true", help="print the sample packaging codes and exit")
    demo.add_argument(
        "--offline",
        action="store_true",
        help="reserve offline pools, then take the backend away: vouchers come from the cache",
    )
    demo.add_argument(
        "--board",
        action="store_true",
        help="scan through the virtual I/O board (its firmware in WebAssembly MicroPython) with a "
        "drop-slot sensor: each valid scan waits for the packaging to be dropped, which the demo does",
    )
    demo.set_defaults(handler=_demo)
    run = commands.add_parser("run", help="run the kiosk with the devices in the configuration")
    config_arg(run)
    run.add_argument("--record", type=Path, metavar="DIR", help="also write each scan's files into DIR")
    run.set_defaults(handler=_run)
    scan = commands.add_parser("scan", help="send one code through the configured issuance path")
    scan.add_argument("code", metavar="CODE")
    config_arg(scan)
    scan.add_argument("--json", action="store_true", help="print the result document as JSON")
    scan.set_defaults(handler=_scan)


def _demo(args: argparse.Namespace) -> int:
    from kiosk.demo import list_codes, run_demo

    if args.list_codes:
        list_codes(sys.stdout)
        return 0
    # The kiosk's own log goes to a file beside the demo's output, so the customer's view in the
    # terminal is not interleaved with warnings from the offline sync and the devices.
    args.out.mkdir(parents=True, exist_ok=True)
    log_path = args.out / "kiosk.log"
    with log_path.open("w", encoding="utf-8") as log_file:
        configure_logging(min(logging.INFO, getattr(logging, args.log_level.upper())), log_file)
        try:
            status = run_demo(
                args.out, args.scan, stdin=sys.stdin, out=sys.stdout, offline=args.offline, board=args.board
            )
        except SecretFileError as exc:
            raise Failure(str(exc)) from None
        finally:
            configure_logging(getattr(logging, args.log_level.upper()), sys.stderr)
    print(f"The kiosk's log: {log_path}", file=sys.stdout)
    return status


def _run(args: argparse.Namespace) -> int:
    from kiosk.recording import Recorder
    from kiosk.runtime import open_kiosk

    config = load(args.config)
    recorder = Recorder(args.record, profile=config.printer.profile) if args.record else None

    async def serve() -> int:
        async with open_kiosk(config, on_report=recorder) as kiosk:
            ready = await kiosk.wait_ready(timeout_s=5.0)
            line = _ready_line(kiosk, config, ready)
            return await kiosk.supervisor.serve_until_signalled(line)

    try:
        return asyncio.run(serve())
    except SecretFileError as exc:
        raise Failure(str(exc)) from None
    except OSError as exc:  # the screen's port taken, a data folder it may not write, ...
        logging.getLogger(__name__).debug("kiosk run could not start", exc_info=True)
        raise Failure(f"cannot start: {exc}") from None


def _ready_line(kiosk: RunningKiosk, config: Config, ready: bool) -> str:
    """One line for the technician (and the journal) once the kiosk serves."""
    screen = getattr(kiosk.screen, "url", None)
    sources = ", ".join(f"{source.name} {source.state}" for source in kiosk.sources) or "no scanner"
    printer = f"printer {config.printer.device}" if kiosk.printer is not None else "no printer"
    cached = sum(row["count"] for row in kiosk.store.available())
    waiting = "" if ready else " (still waiting for a device)"
    return (
        f"kiosk ready{waiting}: screen {screen or 'none'}, {sources}, {printer}, "
        f"{cached} offline codes cached, backend {config.backend.url}"
    )


def _scan(args: argparse.Namespace) -> int:
    from kiosk.runtime import open_kiosk

    config = load(args.config)

    async def once() -> ScanReport:
        done: asyncio.Future[ScanReport] = asyncio.get_running_loop().create_future()
        async with open_kiosk(
            config, on_report=done.set_result, with_devices=False, background=False, resume=False
        ) as kiosk:
            kiosk.app.scan(args.code)
            return await done

    try:
        report = asyncio.run(once())
    except SecretFileError as exc:
        raise Failure(str(exc)) from None
    print(json_text(report.to_json()) if args.json else _scan_line(report, config))
    if report.status != "issued":
        print(f"kiosk: scan not issued: {report.status} ({report.detail})", file=sys.stderr)
        return 1
    return 0


def _scan_line(report: ScanReport, config: Config) -> str:
    """A scan's result for people: the voucher as the kiosk's screen shows it, or why there is none."""
    from kiosk.presentation.view import build_voucher_view

    if report.voucher is None:
        return f"{report.status}: {one_line(report.detail)}" if report.detail else report.status
    view = build_voucher_view(report.voucher, config.kiosk.locale, config.kiosk.timezone)
    parts = [
        view.shop_name,
        view.discount,
        f"code {view.code}",
        view.expires and f"expires {view.expires}",
        view.link and f"link {view.link}",
    ]
    return f"{report.status} ({report.source}): " + ", ".join(one_line(part) for part in parts if part)
