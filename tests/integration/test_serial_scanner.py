"""The serial scan source reading the virtual scanner's pseudo-terminal through pyserial."""

from __future__ import annotations

import asyncio

import pytest

from kiosk.devices.scanner.serial_source import SerialScanSource
from kiosk.sim.virtual_scanner import VirtualScanner

pytestmark = pytest.mark.integration
CODES = ["10HS01JAYSCS07SVDQANFS61TF0XJN", "20GB0042", "https://r.example/scan?c=30PH0007"]


async def read_lines(scanner: VirtualScanner, source_terminator: str, codes: list[str], expect: int) -> list[str]:
    lines: list[str] = []
    source = SerialScanSource(scanner.path, terminator=source_terminator)
    source.start(asyncio.get_running_loop(), lines.append)
    try:
        for _ in range(200):
            if source.state == "open":
                break
            await asyncio.sleep(0.01)
        assert source.state == "open"
        for code in codes:
            await asyncio.to_thread(scanner.type, code)
            if scanner.terminator == b"":
                await asyncio.sleep(0.25)  # no terminator: the pause between codes ends each one
        for _ in range(300):
            if len(lines) >= expect:
                break
            await asyncio.sleep(0.01)
    finally:
        source.stop()
    return lines


@pytest.mark.parametrize("terminator", ["cr", "lf", "crlf", "tab", "none"])
def test_every_terminator_yields_each_code_once(terminator: str) -> None:
    with VirtualScanner(terminator=terminator, char_delay_s=0.001) as scanner:
        lines = asyncio.run(read_lines(scanner, "any", CODES, len(CODES)))
    assert lines == CODES


def test_garbage_and_overlong_lines_do_not_stop_the_source() -> None:
    with VirtualScanner(terminator="cr") as scanner:
        noise = ["\x00\x01\x02\xff", "A" * 70000, CODES[0]]
        lines = asyncio.run(read_lines(scanner, "cr", noise, 2))
    assert lines[-1] == CODES[0]
    assert all(len(line) <= 4096 for line in lines)
