"""Kill -9 loops over offline issuance and forwarding (see ``kiosk.sim.crash_loop``): random
SIGKILLs, and, where strace exists, kills at a chosen fdatasync or pwrite of the journal."""

import shutil

import pytest

from kiosk.sim.crash_loop import run_crash_loop

pytestmark = pytest.mark.integration


def test_no_crash_loses_duplicates_or_corrupts_an_issuance() -> None:
    report = run_crash_loop(200, 40, codes=5000, seed=7)
    assert report.problems == []
    assert report.kills == 200 and report.strace_kills == (40 if shutil.which("strace") else 0)
    assert report.issued > 500  # the worker really issued between the kills
    assert report.forwarded_once
