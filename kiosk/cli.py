"""The ``kiosk`` command.

Exit codes: 0 success; 1 a scan that did not end in a voucher (``kiosk scan``); 2 a usage,
configuration or credentials problem, with a message on stderr that says what to fix; 141 (as a
command killed by SIGPIPE) when stdout was closed early, as by ``kiosk journal | head -1``.
``--json`` output is one JSON document on stdout. Whatever the command prints passes through
``kiosk.presentation.terminal``: control characters in outside text are spelled out, not obeyed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from zoneinfo import ZoneInfo

from kiosk import __version__, build_info, drain
from kiosk.config import DEFAULT_CONFIG_PATH, LOCALES, PROFILES, Config, ConfigError, load_config, parse_size
from kiosk.logs import configure_logging
from kiosk.presentation.terminal import json_text, one_line, visible
from kiosk.secret_files import SecretFileError

if TYPE_CHECKING:
    from kiosk.app import ScanReport
    from kiosk.issuance.offline import OfflineService
    from kiosk.issuance.offline_store import OfflineStore
    from kiosk.issuance.rezip_client import RezipClient
    from kiosk.runtime import RunningKiosk
    from kiosk.shop.config import ShopConfig

__all__ = ["main"]


class _Failure(Exception):
    """A problem the user can fix; its message goes to stderr and the exit code is 2."""


#: The exit status of a command whose stdout was closed early (128 + SIGPIPE, as the shell reports).
_STDOUT_CLOSED = 141


class _ShownText:
    """A text stream that spells out control characters before they reach the terminal."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(visible(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; ends quietly (141) when whoever read stdout went away."""
    # Everything the kiosk writes (its database and its -wal and -shm files, logos, frames) is
    # private from the first byte, whoever starts it.
    os.umask(0o077)
    for name in ("stdout", "stderr"):
        if not isinstance(getattr(sys, name), _ShownText):
            setattr(sys, name, _ShownText(getattr(sys, name)))
    try:
        try:
            return _main(argv)
        finally:  # also when argparse exits after --help: the text must be out before we return
            sys.stdout.flush()
    except BrokenPipeError:
        if not _stdout_closed():
            raise
    except SystemExit as exc:  # argparse ignores a failed write of --help and exits 0
        if exc.code not in (0, None) or not _stdout_closed():
            raise
    # Later flushes (at exit too) go nowhere instead of failing again.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return _STDOUT_CLOSED


def _stdout_closed() -> bool:
    """Whether stdout is a pipe or socket whose reader has gone (not some other broken pipe)."""
    poller = select.poll()
    try:
        poller.register(sys.stdout.fileno(), select.POLLOUT)
    except (OSError, ValueError):  # no file descriptor (a StringIO): not a pipe at all
        return False
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    configure_logging(getattr(logging, args.log_level.upper()), sys.stderr)
    try:
        return int(args.handler(args))
    except _Failure as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiosk",
        description="RE-ZIP drop-point kiosk: scan packaging, issue a voucher, show it and print it.",
    )
    parser.add_argument("--version", action="version", version=build_info.describe())
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    drain.add_parser(commands)

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
    _config_arg(run)
    run.add_argument("--record", type=Path, metavar="DIR", help="also write each scan's files into DIR")
    run.set_defaults(handler=_run)

    scan = commands.add_parser("scan", help="send one code through the configured issuance path")
    scan.add_argument("code", metavar="CODE")
    _config_arg(scan)
    scan.add_argument("--json", action="store_true", help="print the result document as JSON")
    scan.set_defaults(handler=_scan)

    pools = commands.add_parser("pools", help="offline pools: sync, status, release")
    pool_actions = pools.add_subparsers(dest="pools_command", required=True, metavar="ACTION")
    for action, text in (
        ("sync", "forward pending issuances, then reserve more codes for offline use"),
        ("status", "cached codes, bundles, pending issuances and the offline limits"),
        ("release", "forward pending issuances, then give every reserved code back"),
    ):
        sub = pool_actions.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
        _config_arg(sub)
        sub.add_argument("--json", action="store_true", help="print one JSON document")
        sub.set_defaults(handler=_pools, action=action)

    journal = commands.add_parser("journal", help="the vouchers this kiosk handed out")
    _config_arg(journal)
    journal.add_argument("--pending", action="store_true", help="only offline issuances not yet forwarded")
    journal.add_argument("--json", action="store_true", help="print one JSON document")
    journal.set_defaults(handler=_journal)

    sync = commands.add_parser("sync", help="forward pending offline issuances to the backend now")
    _config_arg(sync)
    sync.add_argument("--json", action="store_true", help="print one JSON document")
    sync.set_defaults(handler=_sync)

    voucher = commands.add_parser("voucher", help="voucher tools")
    vouchers = voucher.add_subparsers(dest="voucher", required=True, metavar="ACTION")
    render = vouchers.add_parser(
        "render",
        help="render a voucher JSON (read from stdin) as the customer sees it",
        description="Read a voucher (the seed fields code, link, type, value, unit, conditions, expires_at, "
        'and optionally "shop": {name, description, logo_url}) as JSON on stdin and render it in a locale.',
    )
    render.add_argument("--locale", required=True, choices=LOCALES)
    render.add_argument(
        "--timezone", default="Europe/Copenhagen", help="zone for the expiry date (default Europe/Copenhagen)"
    )
    render.add_argument("--json", action="store_true", help="print the view model as JSON")
    render.add_argument("--png", type=Path, metavar="FILE", help="write the voucher screen as PNG (needs Chromium)")
    render.add_argument("--size", default="800x480", help="screen size for --png, WIDTHxHEIGHT (default 800x480)")
    render.add_argument(
        "--app-scheme",
        action="append",
        default=[],
        metavar="SCHEME",
        help="also allow links with this app scheme (besides https)",
    )
    render.add_argument(
        "--escpos", type=Path, metavar="FILE", help="write the exact ESC/POS bytes of the paper voucher"
    )
    render.add_argument("--printer", default="TM-T20II", choices=PROFILES, help="printer profile for --escpos")
    render.set_defaults(handler=_voucher_render)

    printer = commands.add_parser("printer", help="printer tools")
    printers = printer.add_subparsers(dest="printer_command", required=True, metavar="ACTION")
    test = printers.add_parser(
        "test",
        help="print a self-test ticket",
        description="Check the printer's status and print a self-test ticket: kiosk version, hardware id, "
        "address and a QR code of the kiosk's status page. Without --device, the configured printer is used.",
    )
    test.add_argument(
        "--config", type=Path, default=None, help=f"configuration file (default {DEFAULT_CONFIG_PATH} if it exists)"
    )
    test.add_argument(
        "--printer", choices=PROFILES, help="printer profile (default: the configured one, else TM-T20II)"
    )
    test.add_argument("--device", help="/dev/usb/lp0, serial:/dev/ttyUSB0, tcp://HOST:9100 or usb:VID:PID")
    test.add_argument("--baud", type=int, help="baud rate for a serial printer")
    test.set_defaults(handler=_printer_test)

    decode = commands.add_parser(
        "decode",
        help="decode the barcodes in still images",
        description="Run the kiosk's image decoder on still images. Per image: the file, the codes "
        "found ({text, format}) and the decode time in ms (not counting loading). Exit 0 when every "
        "image could be read.",
    )
    decode.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    decode.add_argument("--json", action="store_true", help="print one JSON document (a list, one entry per image)")
    decode.add_argument(
        "--mode",
        choices=["still", "frame"],
        default="still",
        help="still: every pass and a vote (default); frame: the camera's fast path",
    )
    decode.set_defaults(handler=_decode)

    shop = commands.add_parser(
        "shop",
        help="the shop's service: RE-ZIP's on-demand webhook, single-use voucher links, Voucherify",
        description="Tools for the service a shop runs on its own server (never on a kiosk): it answers "
        "RE-ZIP's signed on-demand webhook with codes published from a Voucherify campaign. Its "
        "configuration is shop.toml (hardware/shop.example.toml is the annotated reference).",
    )
    shop_actions = shop.add_subparsers(dest="shop_command", required=True, metavar="ACTION")
    shop_check = shop_actions.add_parser(
        "check",
        help="check shop.toml and read its token files",
        description="Load and check the shop's configuration, read its token files (mode 0600), and print "
        "what was found: the webhook URL to give RE-ZIP, a sample voucher link and landing URL, RE-ZIP's and "
        "Voucherify's addresses, the campaign and the voucher settings. Nothing is sent anywhere. Exit 2 "
        "naming the key (or the token file) when something is wrong.",
    )
    _shop_config_arg(shop_check)
    shop_check.set_defaults(handler=_shop_check)
    shop_webhook = shop_actions.add_parser(
        "webhook",
        help="serve RE-ZIP's on-demand webhook, the single-use voucher links and the till's redemptions",
        description="Read and check the Voucherify campaign (exit 2 when RE-ZIP cannot show its codes), fetch "
        "RE-ZIP's signing keys, then serve until SIGTERM: POST server.path (RE-ZIP's signed call: one code "
        "published and answered within server.deadline_s, else 503 so RE-ZIP uses the static pool), GET "
        "/redeem?code= (303 to the landing page for a code that validates, else a page in the customer's "
        "language), POST /redemptions (a till's bearer token from server.redemptions_token_file) and GET "
        "/healthz. Prints a ready line on stderr; exits 1 when Voucherify cannot be reached at start or when "
        "the service keeps failing, 2 for a configuration, token or campaign problem.",
    )
    _shop_config_arg(shop_webhook)
    shop_webhook.set_defaults(handler=_shop_webhook)
    shop_export = shop_actions.add_parser(
        "export-batch",
        help="publish codes from the campaign and upload them to the shop's static RE-ZIP pool",
        description="Publish COUNT codes from the Voucherify campaign and upload them, with their single-use "
        "links, as a batch of the static pool rezip.static_pool_id, so that offline kiosks hand out Voucherify "
        "codes too. A run is idempotent: run it again after a failure and it resumes (the same codes, the same "
        "batch). Without --run the unfinished run in export.state_file is resumed, else a new one begins. "
        "Progress goes to stderr, one result line to stdout. Exit 1 when Voucherify or RE-ZIP failed (run it "
        "again), 2 for a configuration, token, campaign or pool problem.",
    )
    _shop_config_arg(shop_export)
    shop_export.add_argument("--count", type=int, required=True, metavar="N", help="how many codes (1 to 100000)")
    shop_export.add_argument(
        "--run",
        metavar="ID",
        help="the run to start or resume (letters, digits, . _ -; default: the unfinished run, else a new one)",
    )
    shop_export.set_defaults(handler=_shop_export)

    sim = commands.add_parser(
        "sim", help="simulators: the stand-in backend and Voucherify, the virtual scanner and I/O board"
    )
    sims = sim.add_subparsers(dest="sim", required=True, metavar="SIMULATOR")

    backend = sims.add_parser(
        "backend",
        help="the stand-in RE-ZIP backend (HTTP + SQLite)",
        description="Serve the stand-in RE-ZIP backend. Prints one JSON line with its URLs when ready (with "
        "--seed demo also webhook, shop_webhook and voucherify), then serves until interrupted. Restarting on "
        "the same --db keeps everything.",
    )
    backend.add_argument("--port", type=int, default=0, help="TCP port (0: a free one)")
    backend.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    backend.add_argument("--db", type=Path, required=True, help="SQLite database file")
    backend.add_argument(
        "--seed",
        choices=["demo"],
        help="create the demo shops, pools and codes, and run their shop webhooks: the stand-in "
        "one, and Nordlys Kaffe's kiosk shop webhook with a stand-in Voucherify (kept in "
        "DB.shop/)",
    )
    backend.add_argument(
        "--webhook-timeout",
        type=float,
        default=1.5,
        metavar="S",
        help="seconds a call to a shop's on-demand webhook may take in all (connecting, "
        "headers and body; answers over 64 KiB are refused) before the shop's static "
        "pools answer instead (default 1.5)",
    )
    backend.add_argument(
        "--kiosk-config",
        type=Path,
        metavar="FILE",
        help="also write a ready kiosk configuration for this backend to FILE",
    )
    backend.set_defaults(handler=_sim_backend)

    voucherify = sims.add_parser(
        "voucherify",
        help="a stand-in Voucherify (HTTP + SQLite) for the shop side",
        description="Serve a stand-in Voucherify API (campaigns with code patterns, publications, vouchers, "
        "validations, redemptions, rollbacks) with the official error objects. Prints one JSON line when "
        "ready: url, app_id, app_token and app_token_file (the token, 0600, beside the database). "
        "Restarting on the same --db keeps everything, the credentials too.",
    )
    voucherify.add_argument("--port", type=int, default=0, help="TCP port (0: a free one)")
    voucherify.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    voucherify.add_argument("--db", type=Path, required=True, help="SQLite database file")
    voucherify.add_argument(
        "--seed",
        choices=["demo"],
        help="create the demo shop's campaigns: 20 %%, 50.00 DKK and a tote bag, single-use codes",
    )
    voucherify.add_argument(
        "--rate-limit",
        type=int,
        default=100,
        metavar="N",
        help="requests a minute before it answers 429 with Retry-After (default 100)",
    )
    voucherify.set_defaults(handler=_sim_voucherify)

    scanner = sims.add_parser(
        "scanner",
        help="a virtual serial scanner on a pseudo-terminal",
        description="Open a pseudo-terminal, print its path on the first line, then type codes from the "
        "arguments, from --file, or from stdin (one per line).",
    )
    scanner.add_argument("codes", nargs="*", metavar="CODE")
    scanner.add_argument("--file", type=Path, help="read codes from this file, one per line")
    scanner.add_argument("--terminator", default="cr", choices=["cr", "lf", "crlf", "tab", "none"])
    scanner.add_argument("--delay-ms", type=float, default=0.0, help="delay between characters")
    scanner.add_argument("--interval", type=float, default=0.0, metavar="S", help="pause between codes")
    scanner.add_argument(
        "--start-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="wait this long after printing the path before typing",
    )
    scanner.add_argument(
        "--hold",
        type=float,
        default=2.0,
        metavar="S",
        help="keep the terminal open this long after the last code (default 2)",
    )
    scanner.set_defaults(handler=_sim_scanner)

    board = sims.add_parser(
        "board",
        help="a virtual I/O board (the real firmware in WebAssembly MicroPython) on a pseudo-terminal",
        description="Start the board firmware in MicroPython's WebAssembly port (needs node and "
        "firmware/node_modules: `make test` or `cd firmware && npm ci`), print the path of its link's "
        "pseudo-terminal (for [board] device), then read commands from stdin: `scan CODE` (the scanner "
        "module reads CODE), `slot` (packaging passes the drop slot), `lights` (print the light's "
        "colour), `garbage` (noise on the link). The light's changes are printed as they happen.",
    )
    board.set_defaults(handler=_sim_board)
    return parser


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG_PATH, help=f"configuration file (default {DEFAULT_CONFIG_PATH})"
    )


def _load(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise _Failure(f"configuration: {exc}") from None


def _shop_config_arg(parser: argparse.ArgumentParser) -> None:
    from kiosk.shop.config import DEFAULT_SHOP_CONFIG_PATH

    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_SHOP_CONFIG_PATH,
        help=f"the shop's configuration (default {DEFAULT_SHOP_CONFIG_PATH})",
    )


def _load_shop(path: Path) -> ShopConfig:
    from kiosk.shop.config import load_shop_config

    try:
        return load_shop_config(path)
    except ConfigError as exc:
        raise _Failure(f"configuration: {exc}") from None


# --- handlers -------------------------------------------------------------------------------------


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
            raise _Failure(str(exc)) from None
        finally:
            configure_logging(getattr(logging, args.log_level.upper()), sys.stderr)
    print(f"The kiosk's log: {log_path}", file=sys.stdout)
    return status


def _run(args: argparse.Namespace) -> int:
    from kiosk.recording import Recorder
    from kiosk.runtime import open_kiosk

    config = _load(args.config)
    recorder = Recorder(args.record, profile=config.printer.profile) if args.record else None

    async def serve() -> int:
        async with open_kiosk(config, on_report=recorder) as kiosk:
            ready = await kiosk.wait_ready(timeout_s=5.0)
            line = _ready_line(kiosk, config, ready)
            reason = await kiosk.supervisor.run_until_signalled(lambda: print(line, file=sys.stderr, flush=True))
        if reason is not None:
            print(f"kiosk: stopping, {reason}", file=sys.stderr, flush=True)
            return 1  # systemd's Restart=on-failure starts a fresh kiosk
        return 0

    try:
        return asyncio.run(serve())
    except SecretFileError as exc:
        raise _Failure(str(exc)) from None
    except OSError as exc:  # the screen's port taken, a data folder it may not write, ...
        logging.getLogger(__name__).debug("kiosk run could not start", exc_info=True)
        raise _Failure(f"cannot start: {exc}") from None


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

    config = _load(args.config)

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
        raise _Failure(str(exc)) from None
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


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _aligned(rows: Iterable[Sequence[str]], indent: str = "") -> list[str]:
    """Rows of text fields as lines, each column as wide as its widest field."""
    cells = [[one_line(field) for field in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(cells[0]))] if cells else []
    return [
        indent + "  ".join(field.ljust(width) for field, width in zip(row, widths, strict=False)).rstrip()
        for row in cells
    ]


def _local_time(stamp: str | None, zone: str) -> str:
    """A stored UTC timestamp as the kiosk's local time ("2026-12-01 10:01:22 CET"), or "never"."""
    if stamp is None:
        return "never"
    return datetime.fromisoformat(stamp).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def _open_store(config: Config):  # type: ignore[no-untyped-def]
    """The kiosk's journal for a command that reads it; a damaged one is reported, not replaced
    (``kiosk run`` sets it aside and begins a new one)."""
    from kiosk.issuance.offline_store import open_store

    try:
        return open_store(config.offline_db, link_schemes=config.link_schemes)
    except OSError as exc:  # JournalDamaged, or a data folder the kiosk may not write
        raise _Failure(f"kiosk.data_dir: {exc}") from None


def _offline_parts(config: Config) -> tuple[RezipClient, OfflineStore, OfflineService]:
    """The store and the offline service, outside a running kiosk (for the CLI)."""
    from kiosk.issuance.configured import make_client, make_offline_service

    try:
        client = make_client(config, read_timeout_s=max(config.backend.read_timeout_s, 10.0))
    except SecretFileError as exc:
        raise _Failure(str(exc)) from None
    store = _open_store(config)
    return client, store, make_offline_service(config, store, client)


def _pools(args: argparse.Namespace) -> int:
    import httpx

    from kiosk.issuance.offline_pools_client import BundleRefused

    config = _load(args.config)
    client, store, service = _offline_parts(config)

    async def act() -> dict[str, Any]:
        try:
            if args.action == "sync":
                report = await service.sync(force=True)
                return {"forwarded": report.forwarded, "bundle_id": report.bundle_id, "codes_added": report.codes_added}
            if args.action == "release":
                forwarded = await service.forward()
                released = {}
                for bundle in store.bundles():
                    if bundle["released_at"] is None:
                        released[bundle["id"]] = await service.client.release(bundle["id"])
                        store.release_bundle(bundle["id"])
                return {"forwarded": forwarded, "released": released}
            return {}
        finally:
            await client.aclose()

    try:
        doc = asyncio.run(act())
    except (httpx.HTTPError, BundleRefused, ValueError) as exc:
        store.close()
        print(f"kiosk: pools {args.action} failed: {exc}", file=sys.stderr)
        return 1
    doc |= {
        "available": [dict(row) for row in store.available()],
        "bundles": [dict(row) for row in store.bundles()],
        "pending": len(store.pending(10**6)),
        "last_contact": store.meta("last_contact"),
        "last_forward": store.meta("last_forward"),
    }
    shop_names = store.shop_names()
    store.close()
    print(json_text(doc) if args.json else "\n".join(_pools_lines(doc, shop_names, config.kiosk.timezone)))
    return 0


def _pools_lines(doc: dict[str, Any], shop_names: Mapping[str, str], zone: str) -> list[str]:
    """``kiosk pools`` for people: what the action did, then the cache, bundles and forwarding."""
    lines = []
    if "codes_added" in doc:
        reserved = f"reserved {_count(doc['codes_added'], 'new code')}"
        done = f"{reserved} (bundle {doc['bundle_id']})" if doc["bundle_id"] else reserved
        lines.append(f"forwarded {_count(doc['forwarded'], 'issuance')}; {done}")
    if "released" in doc:
        given_back = [
            f"{_count(count, 'code')} of bundle {bundle} given back" for bundle, count in doc["released"].items()
        ]
        lines.append(
            f"forwarded {_count(doc['forwarded'], 'issuance')}; " + ("; ".join(given_back) or "no bundle to release")
        )
    cached = [
        (
            shop_names.get(row["shop_id"], "(shop not named)"),
            row["shop_id"],
            row["visibility"],
            _count(row["count"], "code"),
        )
        for row in doc["available"]
    ]
    bundles = [
        (
            bundle["id"],
            f"released {_local_time(bundle['released_at'], zone)}"
            if bundle["released_at"]
            else f"expires {_local_time(bundle['expires_at'], zone)}",
        )
        for bundle in doc["bundles"]
    ]
    lines.append("codes cached for offline use:" + ("" if cached else " none"))
    lines += _aligned(cached, indent="  ")
    lines.append("bundles:" + ("" if bundles else " none"))
    lines += _aligned(bundles, indent="  ")
    lines.append(f"pending issuances: {doc['pending']}")
    lines.append(f"last contact with the backend: {_local_time(doc['last_contact'], zone)}")
    lines.append(f"last forward: {_local_time(doc['last_forward'], zone)}")
    return lines


def _journal(args: argparse.Namespace) -> int:
    config = _load(args.config)
    store = _open_store(config)
    entries = store.journal(pending_only=args.pending)
    store.close()
    docs = [
        {
            "key": e.key,
            "code": e.code,
            "packaging": e.packaging,
            "source": e.source,
            "forwarded": e.forwarded,
            "forward_status": e.forward_status,
            "shown": e.shown,
            "created_at": e.created_at,
        }
        for e in entries
    ]
    if args.json:
        print(json_text(docs))
    elif not docs:
        print("nothing waiting to be forwarded" if args.pending else "no vouchers handed out yet")
    else:
        zone = config.kiosk.timezone
        print(
            "\n".join(
                _aligned(
                    (
                        _local_time(doc["created_at"], zone),
                        doc["source"],
                        doc["code"],
                        doc["packaging"],
                        "forwarded" if doc["forwarded"] else "pending",
                    )
                    for doc in docs
                )
            )
        )
    return 0


def _sync(args: argparse.Namespace) -> int:
    import httpx

    config = _load(args.config)
    client, store, service = _offline_parts(config)

    async def forward() -> int:
        try:
            return await service.forward()
        finally:
            await client.aclose()

    try:
        forwarded = asyncio.run(forward())
    except (httpx.HTTPError, ValueError) as exc:
        print(f"kiosk: sync failed: {exc}; {len(store.pending(10**6))} issuances still pending", file=sys.stderr)
        store.close()
        return 1
    pending = len(store.pending(10**6))
    store.close()
    print(
        json.dumps({"forwarded": forwarded, "pending": pending})
        if args.json
        else f"forwarded {forwarded}, pending {pending}"
    )
    return 0


def _voucher_render(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from kiosk.core.voucher import VoucherError, parse_voucher
    from kiosk.presentation.view import build_voucher_view

    try:
        ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise _Failure(f"--timezone: unknown time zone {args.timezone!r}") from None
    try:
        size = parse_size(args.size)
    except ValueError as exc:
        raise _Failure(f"--size: {exc}") from None
    try:
        doc = json.loads(sys.stdin.read())
    except ValueError as exc:
        raise _Failure(f"voucher: stdin is not JSON ({exc})") from None
    try:
        voucher = parse_voucher(doc, link_schemes={"https", *args.app_scheme})
    except VoucherError as exc:
        raise _Failure(f"voucher: {exc}") from None
    for warning in voucher.warnings:
        print(f"kiosk: warning: {warning}", file=sys.stderr)
    view = build_voucher_view(voucher, args.locale, args.timezone)
    if args.escpos:
        from kiosk.presentation.paper import render_paper

        args.escpos.write_bytes(render_paper(view, args.printer))
    if args.png:
        from kiosk.devices.screen.snapshot import render_voucher_png

        try:
            png = asyncio.run(render_voucher_png(voucher, args.locale, args.timezone, size))
        except RuntimeError as exc:
            raise _Failure(f"--png: {exc}") from None
        args.png.write_bytes(png)
    doc = {
        "discount": view.discount,
        "code": view.code,
        "link": view.link,
        "expires": view.expires,
        "conditions": view.conditions,
        "labels": view.labels,
        "shop": {"name": view.shop_name, "description": view.shop_description, "logo_url": view.logo_url},
        "qr": view.qr,
    }
    if args.json:
        print(json_text(doc))
    elif not (args.png or args.escpos):
        lines = [view.shop_name or "", view.discount, view.use_code_line]
        if view.expires_line:
            lines.append(view.expires_line)
        lines += [view.conditions, f"QR: {view.qr}"]
        print("\n".join(line for line in lines if line))
    return 0


def _decode(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from kiosk.devices.scanner.image_decoder import ImageDecoder

    decoder = ImageDecoder(args.mode)
    documents: list[dict[str, Any]] = []
    unreadable = 0
    for path in args.images:
        try:
            with Image.open(path) as image:
                gray = np.asarray(image.convert("L"))
        except (OSError, UnidentifiedImageError) as exc:
            print(f"kiosk: {path}: cannot read the image ({exc})", file=sys.stderr)
            unreadable += 1
            continue
        started = time.perf_counter()
        codes = decoder.decode(gray)
        elapsed_ms = (time.perf_counter() - started) * 1000
        documents.append(
            {
                "file": str(path),
                "codes": [{"text": c.text, "format": c.format} for c in codes],
                "ms": round(elapsed_ms, 2),
            }
        )
    if args.json:
        print(json_text(documents))
    else:
        for doc in documents:
            found = "; ".join(f"{c['text']!r} ({c['format']})" for c in doc["codes"]) or "no code"
            print(f"{doc['file']}: {found} [{doc['ms']:.1f} ms]")
    return 1 if unreadable else 0


def _printer_test(args: argparse.Namespace) -> int:
    import socket

    from kiosk.devices.printer.connection import PrinterConnection
    from kiosk.devices.printer.device import DeviceError, PrinterDevice
    from kiosk.presentation.paper import TestTicket, render_test_ticket

    config_path = args.config or (DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None)
    config = _load(config_path) if config_path else None
    if args.device is None and config is None:
        raise _Failure("no printer: give --device, or --config with a [printer] section")
    baud = args.baud or (config.printer.baud if config else 9600)
    try:
        device = PrinterDevice.parse(args.device, baud=baud) if args.device else config.printer_device  # type: ignore[union-attr]
    except DeviceError as exc:
        raise _Failure(f"--device: {exc}") from None
    profile = args.printer or (config.printer.profile if config else "TM-T20II")
    address = _local_address()
    port = config.screen.address[1] if config else 8080
    ticket = TestTicket(
        version=__version__,
        hardware_id=config.kiosk.hardware_id if config else socket.gethostname(),
        address=address,
        status_url=f"http://{address}:{port}/status",
        profile=profile,
    )
    connection = PrinterConnection(device, profile)
    try:
        status = connection.status()
        if not status.ready:
            print(f"kiosk: printer {device} is not ready: {status.state} {status.detail}".rstrip(), file=sys.stderr)
            return 1
        connection.send(render_test_ticket(ticket))
    except OSError as exc:
        print(f"kiosk: printing the test ticket on {device} failed: {exc}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    answered = "" if status.answered else " (this printer does not report its status)"
    print(f"test ticket printed on {device}, profile {profile}{answered}")
    return 0


def _local_address() -> str:
    """This machine's address on its network, for the technician's status link."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def _shop_check(args: argparse.Namespace) -> int:
    from kiosk.shop.config import REDEEM_PATH, REDEMPTIONS_PATH

    config = _load_shop(args.config)
    _shop_secrets(config)
    server, rezip, voucherify, voucher = config.server, config.rezip, config.voucherify, config.voucher
    link = config.link_for("EXAMPLE")
    checked = (
        " (this service's redeem page: each link works once)"
        if link.startswith(config.public_base + REDEEM_PATH + "?")
        else " (not this service's redeem page: nothing here stops a second use)"
    )
    rows = [
        ("webhook", f"{config.webhook_url} (the on-demand pool's webhook_url at RE-ZIP)"),
        ("listening", f"{server.listen}, answering within {server.deadline_s:g} s"),
        (
            "redemptions",
            f"POST {REDEMPTIONS_PATH} with the token in {server.redemptions_token_file}"
            if server.redemptions_token_file
            else f"POST {REDEMPTIONS_PATH} is off (no redemptions_token_file)",
        ),
        ("link checks", f"at most {server.link_checks_per_minute} a minute"),
        ("voucher link", link + checked),
        ("landing page", config.landing_for("EXAMPLE")),
        ("RE-ZIP", f"shop {rezip.shop_id}, API {rezip.api_url} ({rezip.auth_scheme}), keys {rezip.jwks_url}"),
        ("static pool", rezip.static_pool_id or "none (export-batch is off)"),
        ("export", f"runs remembered in {config.export.state_file}, {config.export.concurrency} publications at once"),
        (
            "signatures",
            f"created within {rezip.signature_window_s:g} s of now; keys fetched again when "
            f"{rezip.jwks_cache_s:g} s old, for a new keyid at most every {rezip.jwks_refetch_interval_s:g} s",
        ),
        ("Voucherify", f"{voucherify.url}, app {voucherify.app_id}, campaign {voucherify.campaign!r}"),
        (
            "voucher",
            f"amounts in {voucher.currency}; conditions: " + (voucher.conditions or "each voucher's additional_info"),
        ),
        (
            "tokens",
            ", ".join(
                str(path)
                for path in (rezip.token_file, voucherify.app_token_file, server.redemptions_token_file)
                if path
            )
            + " read (mode 0600)",
        ),
    ]
    print(f"{args.config}: the configuration is good")
    print("\n".join(_aligned(rows, indent="  ")))
    return 0


def _shop_secrets(config: ShopConfig) -> Any:
    try:
        return config.read_secrets()
    except SecretFileError as exc:
        raise _Failure(str(exc)) from None


def _shop_webhook(args: argparse.Namespace) -> int:
    from kiosk.shop.service import ShopError, ShopService
    from kiosk.supervisor import Supervisor

    config = _load_shop(args.config)
    secrets = _shop_secrets(config)

    async def serve() -> int:
        service = ShopService(config, secrets)
        try:
            await service.start()
        except ShopError as exc:
            print(f"kiosk: {exc}", file=sys.stderr, flush=True)
            return exc.exit_code
        supervisor = Supervisor()
        try:
            supervisor.start("shop-service-accept", service.serve)
            campaign = service.campaign
            assert campaign is not None and service.gate is not None
            keys = (
                "RE-ZIP's keys loaded" if service.gate.keys.loaded else "RE-ZIP's keys not fetched yet (503 until then)"
            )
            line = (
                f"kiosk shop webhook ready: listening on {service.url}, webhook {config.webhook_url}, campaign "
                f"{campaign.name!r} ({campaign.id}), {keys}"
            )
            reason = await supervisor.run_until_signalled(lambda: print(line, file=sys.stderr, flush=True))
            if reason is not None:
                print(f"kiosk: stopping, {reason}", file=sys.stderr, flush=True)
                return 1
            return 0
        finally:
            await supervisor.stop()
            await service.stop()

    try:
        return asyncio.run(serve())
    except OSError as exc:  # the port taken, an address this machine does not have
        raise _Failure(f"cannot listen on {config.server.listen}: {exc.strerror or exc}") from None


def _shop_export(args: argparse.Namespace) -> int:
    from kiosk.shop.export import export_batch
    from kiosk.shop.service import ShopError

    config = _load_shop(args.config)
    secrets = _shop_secrets(config)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        result = asyncio.run(export_batch(config, secrets, args.count, run_id=args.run, progress=progress))
    except ShopError as exc:
        print(f"kiosk: export-batch: {exc}", file=sys.stderr)
        return exc.exit_code
    skipped = f", {result.skipped} left out" if result.skipped else ""
    print(
        f"exported {result.count} codes of campaign {result.campaign!r} to pool {result.pool_id}: "
        f"batch {', '.join(result.batches) or '(none)'}, {result.added} new at RE-ZIP{skipped} "
        f"(run {result.run_id}{', resumed' if result.resumed else ''})"
    )
    return 0


def _sim_backend(args: argparse.Namespace) -> int:
    from kiosk.sim.backend import StandInBackend
    from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK, seed_demo
    from kiosk.sim.kiosk_config import write_kiosk_config
    from kiosk.sim.shop_webhook import ShopWebhook
    from kiosk.sim.voucherify_shop import voucherify_shop

    backend = StandInBackend(args.db, webhook_timeout_s=args.webhook_timeout)
    try:
        server = backend.serve(args.host, args.port)
    except OSError as exc:
        raise _Failure(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    server.start()
    ready: dict[str, str] = {"url": server.url, "jwks": server.url + "/.well-known/jwks.json"}
    stack = contextlib.ExitStack()
    if args.seed == "demo":
        webhook = ShopWebhook(ready["jwks"])
        stack.callback(webhook.serve(args.host).start().stop)
        seed_demo(backend.store, webhook.url, webhook.failing_url)
        ready["webhook"] = webhook.url
        shop = stack.enter_context(
            voucherify_shop(args.db.with_name(args.db.name + ".shop"), server.url, backend.store)
        )
        ready["shop_webhook"] = shop.webhook_url
        ready["voucherify"] = shop.voucherify.ready_line()["url"]
    if args.kiosk_config:
        if args.seed != "demo":
            raise _Failure("--kiosk-config needs --seed demo (it uses the demo kiosk's token)")
        write_kiosk_config(args.kiosk_config, backend_url=server.url, token=DEMO_KIOSK_TOKEN, drop_point=DROP_POINT_DK)
        ready["kiosk_config"] = str(args.kiosk_config)
    print(json.dumps(ready), flush=True)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    stack.close()
    backend.close()
    return 0


def _sim_voucherify(args: argparse.Namespace) -> int:
    from kiosk.sim.voucherify import StandInVoucherify, seed_demo

    if args.rate_limit < 1:
        raise _Failure("--rate-limit: must be at least 1 request a minute")
    try:
        stand_in = StandInVoucherify(args.db, rate_limit=args.rate_limit)
    except (OSError, ValueError) as exc:
        raise _Failure(f"--db: {exc}") from None
    if args.seed == "demo":
        seed_demo(stand_in.store)
    try:
        server = stand_in.serve(args.host, args.port)
    except OSError as exc:
        raise _Failure(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    server.start()
    print(json.dumps(stand_in.ready_line()), flush=True)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    stand_in.close()
    return 0


def _sim_scanner(args: argparse.Namespace) -> int:
    from kiosk.sim.virtual_scanner import VirtualScanner

    if args.file is not None:
        try:
            codes = [line.rstrip("\r\n") for line in args.file.read_text("utf-8").splitlines() if line.strip()]
        except OSError as exc:
            raise _Failure(f"{args.file}: {exc.strerror or exc}") from None
    else:
        codes = list(args.codes)
    with VirtualScanner(terminator=args.terminator, char_delay_s=args.delay_ms / 1000) as scanner:
        print(scanner.path, flush=True)
        time.sleep(args.start_delay)
        source = codes if (codes or args.file) else (line.rstrip("\r\n") for line in sys.stdin)
        for index, code in enumerate(source):
            if index and args.interval:
                time.sleep(args.interval)
            scanner.type(code)
        time.sleep(args.hold)
    return 0


def _sim_board(args: argparse.Namespace) -> int:
    import os
    import threading

    from kiosk.sim.virtual_board import VirtualBoard, simulator_available

    if not simulator_available():
        raise _Failure("the board simulator needs node and firmware/node_modules (run: cd firmware && npm ci)")
    with VirtualBoard() as board:
        print(board.device, flush=True)
        done = threading.Event()

        def watch_lights() -> None:
            shown = None
            while not done.wait(0.05):
                if board.lights != shown:
                    shown = board.lights
                    try:
                        print("lights {},{},{}".format(*shown), flush=True)
                    except BrokenPipeError:
                        return  # stdout is closed: main() ends quietly once the commands end

        threading.Thread(target=watch_lights, daemon=True).start()
        for line in sys.stdin:
            command, _, rest = line.strip().partition(" ")
            if command == "scan" and rest:
                board.scan(rest)
            elif command == "slot":
                board.slot_pass()
            elif command == "lights":
                print("lights {},{},{}".format(*board.lights), flush=True)
            elif command == "garbage":
                board.to_kiosk(os.urandom(64))
                board.to_board(os.urandom(64))
            elif command:
                print(f"unknown command {command!r}: scan CODE, slot, lights, garbage", file=sys.stderr, flush=True)
        done.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
