"""Hostile scanner input against the whole running kiosk: any bytes a serial scanner (broken,
misconfigured, or something else on the port) could send reach the kiosk through a real
pseudo-terminal read with pyserial. Afterwards the next customer's code, typed as a scanner types
it, must get its voucher; nothing unexpected is logged; no junk reaches the backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.core.codes import PackagingCode, normalise
from kiosk.sim.virtual_scanner import VirtualScanner
from tests.integration.hostile import KioskHarness, fresh_code

pytestmark = pytest.mark.integration

PIECES = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(
        [
            b"\r",
            b"\n",
            b"\r\n",
            b"\t",
            b"\x00" * 50,
            b"\x1b[2J\x1b]0;x\x07",
            b"\xff\xfe\xc3(",
            b"]Q1",
            b"https://shop.example/p/10HS0042\r",
            b"https://re-zip.com/p/20GBX\r",
            b"10HS" + b"0" * 26 + b"\r",
            b"A" * 5000,
            b"\x1b" * 4097 + b"\r",
            "😀".encode() * 100 + b"\r",
            b"10HS0042" * 600,
        ]
    ),
)


@pytest.fixture(scope="module")
def scanner_and_harness(tmp_path_factory: pytest.TempPathFactory):
    with VirtualScanner(terminator="cr") as scanner:
        with KioskHarness(Path(tmp_path_factory.mktemp("hostile-scanner")), scanner_device=scanner.path) as harness:
            harness.call(harness.kiosk.wait_ready(10))
            yield scanner, harness


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(pieces=st.lists(PIECES, max_size=6))
def test_no_byte_stream_stops_the_next_customer(scanner_and_harness, pieces: list[bytes]) -> None:
    scanner, harness = scanner_and_harness
    scans_before = len(harness.world.backend.store.scan_log())
    scanner.send(b"".join(pieces))
    harness.quiet(0.3)  # a line without terminator ends after 100 ms of silence
    code = fresh_code()
    report = harness.scan(code, through=scanner.type)
    assert report.status == "issued" and report.voucher is not None
    sent = [entry["barcode"] for entry in harness.world.backend.store.scan_log()[scans_before:]]
    assert code in sent and all(isinstance(normalise(barcode), PackagingCode) for barcode in sent)
    assert harness.log_problems([report.voucher.code]) == []
    assert next(s for s in harness.kiosk.sources).state == "open"
