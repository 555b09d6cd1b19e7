"""The simulators: ``sim backend``, ``sim voucherify``, ``sim scanner`` and ``sim board``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.cli.common import Failure

if TYPE_CHECKING:
    from kiosk.cli.common import Commands
    from kiosk.sim.httpd import AsyncJsonServer, JsonServer

__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    """Add this group's commands to the ``kiosk`` parser."""
    sim = commands.add_parser(
        "sim", help="simulators: the stand-in backend and Voucherify, the virtual scanner and I/O board"
    )
    sims = sim.add_subparsers(dest="sim", required=True, metavar="SIMULATOR")

    _add_backend(sims)
    _add_voucherify(sims)
    _add_scanner(sims)
    _add_board(sims)


def _add_backend(sims: Commands) -> None:
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


def _add_voucherify(sims: Commands) -> None:
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


def _add_scanner(sims: Commands) -> None:
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


def _add_board(sims: Commands) -> None:
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
        raise Failure(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    server.start()
    servers: list[JsonServer | AsyncJsonServer] = [server]
    ready: dict[str, str] = {"url": server.url, "jwks": server.url + "/.well-known/jwks.json"}
    stack = contextlib.ExitStack()
    if args.seed == "demo":
        webhook = ShopWebhook(ready["jwks"])
        servers.append(webhook.serve(args.host).start())
        stack.callback(servers[-1].stop)
        seed_demo(backend.store, webhook.url, webhook.failing_url)
        ready["webhook"] = webhook.url
        shop = stack.enter_context(
            voucherify_shop(args.db.with_name(args.db.name + ".shop"), server.url, backend.store)
        )
        ready["shop_webhook"] = shop.webhook_url
        ready["voucherify"] = shop.voucherify.ready_line()["url"]
        assert shop.voucherify.server is not None
        servers.append(shop.voucherify.server)
    if args.kiosk_config:
        if args.seed != "demo":
            raise Failure("--kiosk-config needs --seed demo (it uses the demo kiosk's token)")
        write_kiosk_config(args.kiosk_config, backend_url=server.url, token=DEMO_KIOSK_TOKEN, drop_point=DROP_POINT_DK)
        ready["kiosk_config"] = str(args.kiosk_config)
    print(json.dumps(ready), flush=True)
    try:
        return _serve_until_signalled(servers)
    finally:
        stack.close()
        backend.close()


def _sim_voucherify(args: argparse.Namespace) -> int:
    from kiosk.sim.voucherify import StandInVoucherify, seed_demo

    if args.rate_limit < 1:
        raise Failure("--rate-limit: must be at least 1 request a minute")
    try:
        stand_in = StandInVoucherify(args.db, rate_limit=args.rate_limit)
    except (OSError, ValueError) as exc:
        raise Failure(f"--db: {exc}") from None
    if args.seed == "demo":
        seed_demo(stand_in.store)
    try:
        server = stand_in.serve(args.host, args.port)
    except OSError as exc:
        raise Failure(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    server.start()
    print(json.dumps(stand_in.ready_line()), flush=True)
    try:
        return _serve_until_signalled([server])
    finally:
        stand_in.close()


def _serve_until_signalled(servers: list[JsonServer | AsyncJsonServer], *, check_s: float = 1.0) -> int:
    """Until SIGTERM or SIGINT (0), or until a server's thread has died (1, said on stderr): a
    stand-in that no longer serves must not stay up looking alive."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(check_s):
        for server in servers:
            if not server.serving:
                print(f"kiosk sim: the stand-in at {server.url} stopped serving", file=sys.stderr, flush=True)
                return 1
    return 0


def _sim_scanner(args: argparse.Namespace) -> int:
    from kiosk.sim.virtual_scanner import VirtualScanner

    if args.file is not None:
        try:
            codes = [line.rstrip("\r\n") for line in args.file.read_text("utf-8").splitlines() if line.strip()]
        except OSError as exc:
            raise Failure(f"{args.file}: {exc.strerror or exc}") from None
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
    import threading

    from kiosk.sim.virtual_board import VirtualBoard, simulator_available

    if not simulator_available():
        raise Failure("the board simulator needs node and firmware/node_modules (run: cd firmware && npm ci)")
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
