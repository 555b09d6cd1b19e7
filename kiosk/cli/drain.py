"""``kiosk drain``: before an upgrade restarts the kiosk, let it finish with its customer (kiosk/drain.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.drain import DEFAULT_SOCKET, drain

if TYPE_CHECKING:
    from kiosk.cli.common import Commands

__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    """Add ``kiosk drain`` to the ``kiosk`` parser."""
    command = commands.add_parser(
        "drain",
        help="let the running kiosk finish with its customer and hold new scans (before an upgrade)",
        description="Before an upgrade restarts the kiosk, the running kiosk finishes with the customer in "
        "front of it and holds new scans for a few seconds, so nobody is cut off mid-voucher.",
    )
    command.add_argument("--socket", type=Path, default=DEFAULT_SOCKET, help="default: %(default)s")
    command.add_argument("--hold-s", type=float, default=10.0, help="hold new scans this long (default: %(default)s)")
    command.add_argument("--timeout-s", type=float, default=90.0, help="give up after (default: %(default)s)")
    command.set_defaults(handler=_drain)


def _drain(args: argparse.Namespace) -> int:
    code, said = drain(args.socket, args.hold_s, args.timeout_s)
    print(f"kiosk drain: {said}")
    return code
