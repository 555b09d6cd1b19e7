"""The simulators never touch a descriptor number after giving it up: the next file the process
opens may have it (a printer file read back empty once in a full run of the suite)."""

from __future__ import annotations

import os
from pathlib import Path

from kiosk.sim.pty_port import PtyPort
from kiosk.sim.virtual_scanner import VirtualScanner


def _open_reusing(number: int, path: Path) -> int:
    """Open ``path`` for writing; with nothing opened in between it gets the freed ``number``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    assert fd == number, "the freed descriptor number was not the lowest free one"
    return fd


def test_a_closed_pty_port_neither_writes_nor_closes_again(tmp_path: Path) -> None:
    port = PtyPort()
    number = port._master
    port.close()
    fd = _open_reusing(number, tmp_path / "printer.bin")
    try:
        port.write(b"board frame")
        port.close()
        os.write(fd, b"receipt")  # still this file's descriptor
    finally:
        os.close(fd)
    assert (tmp_path / "printer.bin").read_bytes() == b"receipt"


def test_a_closed_virtual_scanner_does_not_close_again(tmp_path: Path) -> None:
    scanner = VirtualScanner()
    first = min(scanner._master, scanner._slave)
    scanner.close()
    fd = _open_reusing(first, tmp_path / "printer.bin")
    try:
        scanner.close()
        os.write(fd, b"receipt")
    finally:
        os.close(fd)
    assert (tmp_path / "printer.bin").read_bytes() == b"receipt"
