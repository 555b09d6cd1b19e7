"""The technician's tools: ``voucher render``, ``printer test`` and ``decode``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from kiosk.cli.common import Failure, load
from kiosk.config import DEFAULT_CONFIG_PATH, LOCALES, PROFILES, parse_size
from kiosk.presentation.terminal import json_text

if TYPE_CHECKING:
    from kiosk.cli.common import Commands

__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    """Add this group's commands to the ``kiosk`` parser."""
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
        help="still: every format, slow passes and a vote when the fast ones find nothing (default); "
        "frame: the camera's path (QR, DataMatrix, Aztec and Code 128 only)",
    )
    decode.set_defaults(handler=_decode)


def _voucher_render(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfoNotFoundError

    from kiosk.core.voucher import VoucherError, parse_voucher
    from kiosk.presentation.view import build_voucher_view

    try:
        ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise Failure(f"--timezone: unknown time zone {args.timezone!r}") from None
    try:
        size = parse_size(args.size)
    except ValueError as exc:
        raise Failure(f"--size: {exc}") from None
    try:
        doc = json.loads(sys.stdin.read())
    except ValueError as exc:
        raise Failure(f"voucher: stdin is not JSON ({exc})") from None
    try:
        voucher = parse_voucher(doc, link_schemes={"https", *args.app_scheme})
    except VoucherError as exc:
        raise Failure(f"voucher: {exc}") from None
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
            raise Failure(f"--png: {exc}") from None
        args.png.write_bytes(png)
    if args.json:
        print(json_text(view.to_json()))
    elif not (args.png or args.escpos):
        lines = [view.shop_name or "", view.discount, view.use_code_line]
        if view.expires_line:
            lines.append(view.expires_line)
        lines += [view.conditions, f"QR: {view.qr}"]
        print("\n".join(line for line in lines if line))
    return 0


def _printer_test(args: argparse.Namespace) -> int:
    from kiosk.devices.printer.device import DeviceError, PrinterDevice
    from kiosk.devices.printer.self_test import PrinterNotReady, print_test_ticket

    config_path = args.config or (DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None)
    config = load(config_path) if config_path else None
    if args.device is not None:
        try:
            device = PrinterDevice.parse(args.device, baud=args.baud or (config.printer.baud if config else 9600))
        except DeviceError as exc:
            raise Failure(f"--device: {exc}") from None
    elif config is not None:
        device = config.printer_device
    else:
        raise Failure("no printer: give --device, or --config with a [printer] section")
    profile = args.printer or (config.printer.profile if config else "TM-T20II")
    try:
        status = print_test_ticket(
            device,
            profile,
            hardware_id=config.kiosk.hardware_id if config else None,
            screen_port=config.screen.address[1] if config else 8080,
        )
    except PrinterNotReady as exc:
        print(f"kiosk: printer {device} is not ready: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"kiosk: printing the test ticket on {device} failed: {exc}", file=sys.stderr)
        return 1
    answered = "" if status.answered else " (this printer does not report its status)"
    print(f"test ticket printed on {device}, profile {profile}{answered}")
    return 0


def _decode(args: argparse.Namespace) -> int:
    from PIL import Image, UnidentifiedImageError

    from kiosk.devices.scanner.image_decoder import ImageDecoder

    decoder = ImageDecoder(args.mode)
    documents: list[dict[str, Any]] = []
    unreadable = 0
    for path in args.images:
        try:
            with Image.open(path) as image:
                gray = image.convert("L")
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
