"""The ``kiosk`` command.

Exit codes: 0 success; 1 a scan that did not end in a voucher (``kiosk scan``); 2 a usage,
configuration or credentials problem, with a message on stderr that says what to fix; 141 (as a
command killed by SIGPIPE) when stdout was closed early, as by ``kiosk journal | head -1``.
``--json`` output is one JSON document on stdout. Whatever the command prints passes through
``kiosk.presentation.terminal``: control characters in outside text are spelled out, not obeyed.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from kiosk import build_info
from kiosk.cli import drain, kiosking, offline, say, shop, sim, tools
from kiosk.cli.common import Failure
from kiosk.fleet import doctor
from kiosk.logs import configure_logging
from kiosk.presentation.terminal import visible

__all__ = ["main"]


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
    except Failure as exc:
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
    for group in (kiosking, offline, tools, doctor, drain, shop, sim, say):
        group.add_commands(commands)
    return parser
