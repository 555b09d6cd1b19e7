"""Hostile requests at the running kiosk's drain socket (the one the health gate uses before an
upgrade): whatever a local process sends, the kiosk goes on serving customers, a real drain is
still answered, and a stray request never holds scans for longer than a drain may (600 s)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kiosk.drain import drain
from tests.integration.hostile import KioskHarness, fresh_code

pytestmark = pytest.mark.integration

REQUESTS = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"",
            b"\n",
            b"drain\n",
            b"drain 1e9\n",
            b"drain -5\n",
            b"drain nan\n",
            b"drain inf\n",
            b"drain 0x10\n",
            b"drain 1 2\n",
            b"DRAIN 1\n",
            b"drain 1",  # no end of line: the kiosk gives up on it
            b"drain \xff\n",
            b"A" * 70_000,
            b"drain 1\n" * 50,
        ]
    ),
)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KioskHarness]:
    runtime = Path(tmp_path_factory.mktemp("runtime"))
    os.environ["RUNTIME_DIRECTORY"] = str(runtime)  # as systemd sets it for the unit
    try:
        with KioskHarness(Path(tmp_path_factory.mktemp("hostile-drain"))) as running:
            yield running
    finally:
        del os.environ["RUNTIME_DIRECTORY"]


def _send(path: Path, data: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(2)
        client.connect(str(path))
        try:
            client.sendall(data)
            client.shutdown(socket.SHUT_WR)
            client.recv(64)
        except (TimeoutError, OSError):
            pass  # refused or cut off: what the kiosk does with it is what counts


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests=st.lists(REQUESTS, min_size=1, max_size=3))
@example(requests=[b"A" * 70_000])  # longer than asyncio's stream buffer: once an unhandled error
@example(requests=[b"drain 1"])  # a request that never ends its line
def test_no_request_at_the_drain_socket_stops_the_next_customer(harness: KioskHarness, requests: list[bytes]) -> None:
    path = Path(os.environ["RUNTIME_DIRECTORY"]) / "control.sock"
    assert path.exists()
    for data in requests:
        _send(path, data)
    harness.call(_release(harness))  # a well-formed stray request may hold scans: a drain ends it
    report = harness.scan(fresh_code())
    assert report.status == "issued" and report.voucher is not None
    assert harness.log_problems([report.voucher.code]) == []
    # The health gate's request is still understood: idle, or (the voucher still on screen) not yet.
    code, said = drain(path, 0, 0.5)
    assert code in (0, 1) and "did not understand" not in said, said


async def _release(harness: KioskHarness) -> None:
    harness.kiosk.app.hold_scans(0)
