"""The board's pure logic and the link protocol run as the firmware runs them: the check scripts in
firmware/tests/ under CPython (a child process with the firmware's import path) and under real
MicroPython (its WebAssembly port from npm, through node)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

FIRMWARE = REPO / "firmware"
LOGIC = FIRMWARE / "tests" / "check_board_logic.py"
MODULES = [FIRMWARE / "board" / name for name in ("scanline.py", "slot.py", "patterns.py")] + [
    REPO / "kiosk/board/link.py"
]
VECTORS = json.loads((FIRMWARE / "test_vectors.json").read_text())


def test_logic_under_cpython() -> None:
    path = os.pathsep.join([str(FIRMWARE / "board"), str(REPO / "kiosk" / "board")])
    result = subprocess.run(
        [sys.executable, str(LOGIC)], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path}
    )
    assert result.returncode == 0, result.stderr
    assert "cpython board logic ok: 4" in result.stdout


@pytest.mark.usefixtures("micropython")
def test_logic_under_micropython() -> None:
    result = subprocess.run(
        ["node", "tests/run_micropython.mjs", str(LOGIC), *map(str, MODULES)],
        capture_output=True,
        text=True,
        cwd=FIRMWARE,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "micropython board logic ok: 4" in result.stdout


@pytest.mark.usefixtures("micropython")
def test_the_same_link_file_runs_under_real_micropython() -> None:
    """The firmware's copy of the protocol is this file; MicroPython (WebAssembly) must agree."""
    result = subprocess.run(
        [
            "node",
            "firmware/tests/run_micropython.mjs",
            "firmware/tests/check_link_vectors.py",
            "kiosk/board/link.py",
            "firmware/test_vectors.json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"micropython vectors ok: {len(VECTORS['frames']) + len(VECTORS['rejected'])}"
