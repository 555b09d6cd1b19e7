"""scripts/flash-firmware against a MicroPython REPL served on a pseudo-terminal (the WebAssembly
port's own REPL, reached through mpremote as a board would be), a fake BOOTSEL drive, and an esptool
stand-in that behaves like the real one at its command line."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kiosk.board.uf2 import UF2Error, check_uf2
from kiosk.sim.virtual_repl import VirtualRepl
from kiosk.tools.firmware_files import board_files
from tests.conftest import REPO

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("micropython"),
]
FLASH = [str(REPO / "scripts" / "flash-firmware")]
RP2040, RP2350_ARM = 0xE48BFF56, 0xE48BFF59


def uf2(payload: bytes, family: int, *, base: int = 0x10000000) -> bytes:
    chunks = [payload[i : i + 256] for i in range(0, len(payload), 256)]
    blocks = []
    for number, chunk in enumerate(chunks):
        header = struct.pack(
            "<8I", 0x0A324655, 0x9E5D5157, 0x2000, base + 256 * number, 256, number, len(chunks), family
        )
        blocks.append(header + chunk.ljust(476, b"\x00") + struct.pack("<I", 0x0AB16F30))
    return b"".join(blocks)


def flash(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([*FLASH, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def on_board(repl: VirtualRepl, code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "mpremote", "connect", repl.device, "exec", code],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def mirror(root: Path) -> Path:
    """An offline micropython-lib mirror in mip's index layout, holding our three packages."""
    for package, path in (
        ("logging", "logging.py"),
        ("aiorepl", "aiorepl.py"),
        ("usb-device-cdc", "usb/device/cdc.py"),
    ):
        content = f"# {package} from the offline mirror\nMIRRORED = {package!r}\n".encode()
        digest = hashlib.sha256(content).hexdigest()[:8]
        (root / "file" / digest[:2]).mkdir(parents=True, exist_ok=True)
        (root / "file" / digest[:2] / digest).write_bytes(content)
        meta = root / "package" / "6" / package
        meta.mkdir(parents=True, exist_ok=True)
        (meta / "latest.json").write_text(json.dumps({"hashes": [[path, digest]], "deps": [], "version": "0.1"}))
    return root


def test_help_and_a_clear_verdict_without_a_board(tmp_path: Path) -> None:
    assert "--micropython" in flash("--help").stdout
    result = flash("--board", "rp2040", "--port", str(tmp_path / "nothing"), "--timeout", "0.5")
    assert result.returncode == 1
    assert result.stdout.strip().splitlines()[-1].startswith("FAILED: flash-firmware: no board at")


def test_application_packages_and_verification_through_mpremote(tmp_path: Path) -> None:
    with VirtualRepl() as repl:
        result = flash("--board", "rp2040", "--port", repl.device, "--index", str(mirror(tmp_path / "mirror")))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "[6/6] Verifying" in result.stdout and "100.0 %" in result.stdout
        assert result.stdout.strip().endswith("every file verified")
        listing = on_board(repl, "import os; print(sorted(os.listdir('/')), sorted(os.listdir('/lib')))")
        for name in board_files():
            assert f"'{name}'" in listing
        assert "'logging.py'" in listing and "'aiorepl.py'" in listing
        assert on_board(repl, "import usb.device.cdc as c; print(c.MIRRORED)").strip() == "usb-device-cdc"
        # A file changed on the board afterwards is caught by --verify-only, by name.
        on_board(repl, "f = open('slot.py', 'a'); f.write('# edited in the field\\n'); f.close()")
        check = flash("--board", "rp2040", "--port", repl.device, "--verify-only")
        assert check.returncode == 1 and "slot.py (differs)" in check.stdout
        on_board(repl, "import os; os.remove('main.py')")
        check = flash("--board", "rp2040", "--port", repl.device, "--verify-only")
        assert "main.py (missing)" in check.stdout


def test_rp2040_through_a_bootsel_drive(tmp_path: Path) -> None:
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n")
    image = uf2(os.urandom(300 * 1024), RP2040)
    (tmp_path / "micropython.uf2").write_bytes(image)
    port = tmp_path / "ttyACM0"
    with VirtualRepl() as repl:

        def board_reboots() -> None:  # the boot ROM takes the file, the drive goes, the REPL port comes
            target = drive / "micropython.uf2"
            while not (target.exists() and target.stat().st_size == len(image)):
                time.sleep(0.05)
            time.sleep(0.2)
            (drive / "INFO_UF2.TXT").unlink()
            port.symlink_to(repl.device)

        threading.Thread(target=board_reboots, daemon=True).start()
        result = flash(
            "--board",
            "rp2040",
            "--micropython",
            str(tmp_path / "micropython.uf2"),
            "--bootsel",
            str(drive),
            "--port",
            str(port),
            "--no-packages",
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rp2040, 1200 blocks, 300 KiB" in result.stdout and "BOOTSEL drive" in result.stdout
    assert (drive / "micropython.uf2").read_bytes() == image


def test_a_wrong_or_damaged_uf2_is_refused_before_copying(tmp_path: Path) -> None:
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    (drive / "INFO_UF2.TXT").write_text("Board-ID: RPI-RP2\n")
    (tmp_path / "pico2.uf2").write_bytes(uf2(b"\x01" * 4096, RP2350_ARM))
    result = flash("--board", "rp2040", "--micropython", str(tmp_path / "pico2.uf2"), "--bootsel", str(drive))
    assert result.returncode == 1 and "for rp2350-arm-s, but the board is rp2040" in result.stdout
    assert sorted(p.name for p in drive.iterdir()) == ["INFO_UF2.TXT"]
    # The RP2350 image on a drive that says it is an RP2040 board: refused too.
    result = flash("--board", "rp2350", "--micropython", str(tmp_path / "pico2.uf2"), "--bootsel", str(drive))
    assert result.returncode == 1 and "is a RPI-RP2 board, not rp2350" in result.stdout


def test_uf2_checks() -> None:
    good = uf2(b"\x02" * 1000, RP2040)
    assert check_uf2(good, "rp2040").blocks == 4
    for bad, reason in (
        (good[:-1], "whole number"),
        (good[:512] + good[1024:], "numbered"),
        (b"\x00" * 512, "bad magic"),
        (uf2(b"x", 0x12345678), "unknown family"),
    ):
        with pytest.raises(UF2Error, match=reason):
            check_uf2(bad, "rp2040")


def test_esp32_through_esptool(tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "esptool"
    # Like esptool: refuses a missing file, "connects", prints progress; fails when the chip is wrong.
    fake.write_text(f"""#!/bin/sh
echo "$@" >> {calls}
case "$*" in *--chip\\ esp32s3*) echo "A fatal error occurred: This chip is ESP32, not ESP32-S3." >&2; exit 2;; esac
case "$*" in *write-flash*) test -f "${{10}}" || {{ echo "No such file" >&2; exit 2; }};; esac
echo "Connecting...."; echo "Chip is ESP32-D0WD-V3"
echo "Writing at 0x00001000... (100 %)"; echo "Hard resetting via RTS pin..."
""")
    fake.chmod(0o755)
    (tmp_path / "esp32.bin").write_bytes(os.urandom(4096))
    with VirtualRepl() as repl:
        result = flash(
            "--board",
            "esp32",
            "--micropython",
            str(tmp_path / "esp32.bin"),
            "--port",
            repl.device,
            "--esptool",
            str(fake),
            "--no-packages",
        )
        assert result.returncode == 0, result.stdout + result.stderr
        lines = calls.read_text().splitlines()
        assert lines[0] == f"--chip esp32 --port {repl.device} erase-flash"
        assert lines[1].endswith(f"write-flash -z 0x1000 {tmp_path / 'esp32.bin'}")
        result = flash(
            "--board",
            "esp32s3",
            "--micropython",
            str(tmp_path / "esp32.bin"),
            "--port",
            repl.device,
            "--esptool",
            str(fake),
            "--no-packages",
        )
    assert result.returncode == 1 and "esptool failed erasing the flash" in result.stdout
    assert "This chip is ESP32, not ESP32-S3" in result.stdout
