"""A full disk under the running kiosk: its data folder on a small tmpfs, filled to the last byte.
Online vouchers are still shown; an offline claim that cannot be made durable is refused with a
notice, never shown unjournalled; the offline loop keeps running; and once space is back, offline
issuance and forwarding resume by themselves."""

from __future__ import annotations

import dataclasses
import errno
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.hostile import Answer, KioskHarness, fresh_code

pytestmark = pytest.mark.integration


@pytest.fixture
def small_disk(tmp_path: Path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> Path:
    """Write until the disk is full, to the last byte; returns the file that holds the space."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_never_loses_an_issuance_and_the_kiosk_recovers_by_itself(small_disk: Path) -> None:
    def on_small_disk(config):  # type: ignore[no-untyped-def]
        return dataclasses.replace(config, kiosk=dataclasses.replace(config.kiosk, data_dir=small_disk / "data"))

    with KioskHarness(small_disk.parent / "kiosk", adjust=on_small_disk) as harness:
        assert harness.scan(fresh_code()).status == "issued"
        filler = _fill(small_disk)

        online = harness.scan(fresh_code())
        assert online.status == "issued" and online.source == "online"  # the backend has it: shown anyway

        harness.proxy.answers.put(Answer(503, b"{}"))
        offline = harness.scan(fresh_code("gron"))
        assert offline.status == "failed" and "offline issuance failed" in offline.detail
        assert harness.kiosk.supervisor.status()["offline sync"]["state"] == "running"

        filler.unlink()  # space is back
        harness.proxy.answers.put(Answer(503, b"{}"))
        recovered = harness.scan(fresh_code("gron"))
        assert recovered.status == "issued" and recovered.source == "offline"
        deadline = time.monotonic() + 20
        while harness.kiosk.store.pending() and time.monotonic() < deadline:
            time.sleep(0.2)  # the forwarder finds the issuance by itself
        assert harness.kiosk.store.pending() == []
        assert harness.scan(fresh_code()).status == "issued"
        problems = harness.log_problems([online.voucher.code, recovered.voucher.code])
        assert problems == []
