"""The files that make up the board's application, and their manifest (``version.json``).

The flash tool copies exactly these files, the simulator runs exactly these files, and the board
says hello with the SHA-256 of the manifest, so "what runs on this board" is one hash. The link
protocol is ``kiosk/board/link.py`` itself: one file for both sides.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from kiosk.board import link

__all__ = ["FIRMWARE_DIR", "application", "board_files", "firmware_version", "manifest", "stage"]

#: The repository's firmware folder (the tools run from a checkout).
FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware"


def board_files(firmware_dir: Path = FIRMWARE_DIR) -> dict[str, bytes]:
    """Name on the board's flash → content, in a stable order."""
    files = {path.name: path.read_bytes() for path in sorted((firmware_dir / "board").glob("*.py"))}
    if not files:
        raise FileNotFoundError(f"no firmware in {firmware_dir / 'board'}")
    files["link.py"] = Path(link.__file__).read_bytes()
    return dict(sorted(files.items()))


def firmware_version(firmware_dir: Path = FIRMWARE_DIR) -> str:
    text = (firmware_dir / "board" / "boardcfg.py").read_text("utf-8")
    found = re.search(r'^FIRMWARE_VERSION = "([0-9.]+)"', text, re.M)
    if not found:
        raise ValueError("boardcfg.py has no FIRMWARE_VERSION")
    return found.group(1)


def manifest(files: dict[str, bytes], version: str) -> bytes:
    """``version.json``: the firmware version and the SHA-256 of every file."""
    doc = {"firmware": version, "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}}
    return json.dumps(doc, sort_keys=True, indent=1).encode() + b"\n"


def application(firmware_dir: Path = FIRMWARE_DIR) -> dict[str, bytes]:
    """Every file the board holds, ``version.json`` included."""
    files = board_files(firmware_dir)
    files["version.json"] = manifest(files, firmware_version(firmware_dir))
    return files


def stage(target: Path, firmware_dir: Path = FIRMWARE_DIR) -> dict[str, bytes]:
    """Write the board's files and ``version.json`` into ``target``, as they will be on the flash."""
    files = application(firmware_dir)
    target.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (target / name).write_bytes(data)
    return files
