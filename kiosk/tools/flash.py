"""scripts/flash-firmware: put MicroPython and the kiosk's board application on an I/O board.

1. MicroPython itself (optional, for a new board): RP2040/RP2350 through the BOOTSEL drive (the
   UF2 is checked first: magic numbers, block numbering, chip family against the board), ESP32
   through esptool (erase, then write at the chip's offset).
2. Stop a running application: Ctrl-C makes the firmware restart into safe mode (its watchdog
   cannot be stopped), and the tool waits for the port to come back.
3. micropython-lib packages with ``mpremote mip install`` (``--index`` for an offline mirror).
4. The application's files and ``version.json`` with mpremote.
5. Verify: the board computes the SHA-256 of every file and must match ``version.json``.
Then the board is reset to start the application.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import serial

from kiosk.board.uf2 import UF2Error, check_uf2
from kiosk.tools.firmware_files import FIRMWARE_DIR, application, stage
from kiosk.tools.report import Report, ToolFailed

__all__ = ["main", "PACKAGES", "ESP_OFFSETS"]

#: micropython-lib packages the application uses (also in firmware/manifest.py for frozen builds).
PACKAGES = ("logging", "aiorepl", "usb-device-cdc")
#: Where MicroPython's image starts on each ESP32 chip.
ESP_OFFSETS = {"esp32": 0x1000, "esp32s2": 0x1000, "esp32s3": 0x0, "esp32c3": 0x0, "esp32c6": 0x0}
BOOTSEL_GLOBS = (
    "/media/*/RPI-RP2",
    "/media/*/RP2350",
    "/run/media/*/RPI-RP2",
    "/run/media/*/RP2350",
    "/media/RPI-RP2",
    "/media/RP2350",
    "/mnt/RPI-RP2",
    "/mnt/RP2350",
)
PORT_GLOBS = ("/dev/serial/by-id/usb-MicroPython*-if00", "/dev/serial/by-id/*Espressif*", "/dev/serial/by-id/*CP210*")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="flash-firmware",
        description="Flash the kiosk's I/O board: MicroPython (optional), micropython-lib packages, the "
        "board application, and a verification of every file's SHA-256 on the board.",
        epilog="A new Pico: hold BOOTSEL while plugging it in, then: flash-firmware --board rp2040 "
        "--micropython RPI_PICO-v1.27.0.uf2. Updating the application only: flash-firmware --board rp2040.",
    )
    parser.add_argument("--board", required=True, choices=["rp2040", "rp2350", *ESP_OFFSETS], help="the board's chip")
    parser.add_argument(
        "--micropython",
        type=Path,
        metavar="FILE",
        help="MicroPython image to flash first (.uf2 for RP2, .bin for ESP32); leave out to keep the one there",
    )
    parser.add_argument(
        "--bootsel",
        type=Path,
        metavar="DIR",
        help="the BOOTSEL drive's mount point (default: looked for under /media, /run/media, /mnt)",
    )
    parser.add_argument("--port", help="the board's REPL port (default: /dev/serial/by-id/usb-MicroPython*-if00)")
    parser.add_argument(
        "--esptool", default=f"{sys.executable} -m esptool", help="how to run esptool (default: %(default)s)"
    )
    parser.add_argument(
        "--index", help="micropython-lib package index: an offline mirror's URL or folder (default: micropython.org)"
    )
    parser.add_argument("--no-packages", action="store_true", help="do not install micropython-lib packages")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the board at each step")
    parser.add_argument(
        "--verify-only",
        action="store_true",
        help="change nothing: check that the board holds this checkout's application, file by file",
    )
    args = parser.parse_args(argv)
    if args.verify_only:
        report = Report("flash-firmware --verify-only", steps=3)
        return report.run(lambda: _verify_only(args, report))
    report = Report("flash-firmware", steps=6)

    def work() -> str:
        try:
            _flash(args, report)
        except UF2Error as exc:
            raise ToolFailed(str(exc)) from None
        return f"{args.board} runs the board application, every file verified"

    return report.run(work)


def _verify_only(args: argparse.Namespace, report: Report) -> str:
    port = _reach_repl(args, report)
    report.step("Comparing every file's SHA-256 on the board")
    _verify(port, application(FIRMWARE_DIR), args.timeout, report)
    _mpremote(port, ["reset"], args.timeout)
    return "the board holds this application, every file verified"


def _reach_repl(args: argparse.Namespace, report: Report) -> str:
    """Two steps: the board's port, and its REPL with the application stopped."""
    report.step("Finding the board's REPL port")
    port = _wait_for_port(args.port, args.timeout)
    report.detail(port)
    report.step("Stopping the application (into safe mode)")
    _stop_application(port, args.timeout, report)
    return port


def _flash(args: argparse.Namespace, report: Report) -> None:
    report.step("MicroPython")
    if args.micropython is None:
        report.detail("kept what is on the board (no --micropython)")
    elif args.board.startswith("rp"):
        _flash_uf2(args, report)
    else:
        _flash_esp32(args, report)
    port = _reach_repl(args, report)
    report.step("micropython-lib packages")
    if args.no_packages:
        report.detail("skipped (--no-packages)")
    else:
        for package in PACKAGES:
            report.detail(f"installing {package}")
            mip = ["mip", "install", *(["--index", args.index] if args.index else []), package]
            _mpremote(port, mip, args.timeout * 4)
    report.step("Copying the application")
    with tempfile.TemporaryDirectory() as staging:
        files = stage(Path(staging), FIRMWARE_DIR)
        total, done = sum(len(data) for data in files.values()), 0
        for name, data in files.items():
            _mpremote(port, ["fs", "cp", str(Path(staging) / name), f":{name}"], args.timeout)
            done += len(data)
            report.detail(f"{name} ({len(data)} bytes)")
            report.progress(done, total)
        report.step("Verifying every file's SHA-256 on the board")
        _verify(port, files, args.timeout, report)
    _mpremote(port, ["reset"], args.timeout)
    report.detail("board reset: the application starts")


def _verify(port: str, files: dict[str, bytes], timeout_s: float, report: Report) -> None:
    """The board hashes each file; all must equal version.json's, and version.json this checkout's."""
    manifest = json.loads(files["version.json"])
    expected = {**manifest["files"], "version.json": hashlib.sha256(files["version.json"]).hexdigest()}
    found = _hashes_on_board(port, list(expected), timeout_s)
    wrong = [name for name in expected if found.get(name) != expected[name]]
    if wrong:
        described = [f"{name} ({'missing' if found.get(name) == 'missing' else 'differs'})" for name in wrong]
        raise ToolFailed(f"on the board: {', '.join(described)}; flash again")
    report.detail(f"{len(expected)} files match (firmware {manifest['firmware']})")


# --- MicroPython images --------------------------------------------------------------------------


def _flash_uf2(args: argparse.Namespace, report: Report) -> None:
    image = args.micropython.read_bytes()
    info = check_uf2(image, args.board)
    report.detail(f"{args.micropython.name}: {info.family}, {info.blocks} blocks, {info.payload_bytes // 1024} KiB")
    drive = args.bootsel or _find_bootsel(args.timeout, report)
    board_id = _bootsel_board(drive)
    if board_id and _board_of(board_id) != args.board:
        raise ToolFailed(f"the BOOTSEL drive at {drive} is a {board_id} board, not {args.board}")
    report.detail(f"BOOTSEL drive {drive} ({board_id or 'board unknown'})")
    target = drive / args.micropython.name
    with open(target, "wb") as out:
        for offset in range(0, len(image), 64 * 1024):
            out.write(image[offset : offset + 64 * 1024])
            out.flush()
            os.fsync(out.fileno())
            report.progress(min(offset + 64 * 1024, len(image)), len(image))
    report.detail("copied; the board restarts into MicroPython")
    deadline = time.monotonic() + args.timeout
    while (drive / "INFO_UF2.TXT").exists():
        if time.monotonic() > deadline:
            raise ToolFailed(
                f"the BOOTSEL drive {drive} is still there after {args.timeout:.0f} s: the copy was not taken"
            )
        time.sleep(0.1)


def _find_bootsel(timeout_s: float, report: Report) -> Path:
    report.detail("waiting for the BOOTSEL drive (hold BOOTSEL while plugging the board in)")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for pattern in BOOTSEL_GLOBS:
            for found in sorted(glob.glob(pattern)):
                if (Path(found) / "INFO_UF2.TXT").is_file():
                    return Path(found)
        time.sleep(0.2)
    raise ToolFailed("no BOOTSEL drive found; is it mounted? (or give --bootsel DIR)")


def _bootsel_board(drive: Path) -> str | None:
    try:
        info = (drive / "INFO_UF2.TXT").read_text("ascii", errors="replace")
    except OSError as exc:
        raise ToolFailed(f"{drive} is not a BOOTSEL drive (no INFO_UF2.TXT: {exc.strerror})") from None
    for line in info.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Board-ID":
            return value.strip()
    return None


def _board_of(board_id: str) -> str:
    return "rp2350" if board_id.upper().startswith("RP2350") else "rp2040"


def _flash_esp32(args: argparse.Namespace, report: Report) -> None:
    if args.port is None:
        raise ToolFailed("ESP32 boards need --port (their USB serial adapter)")
    offset = ESP_OFFSETS[args.board]
    esptool = args.esptool.split()
    for what, command in (
        ("erasing the flash", ["--chip", args.board, "--port", args.port, "erase-flash"]),
        (
            f"writing {args.micropython.name} at 0x{offset:x}",
            [
                "--chip",
                args.board,
                "--port",
                args.port,
                "--baud",
                "460800",
                "write-flash",
                "-z",
                f"0x{offset:x}",
                str(args.micropython),
            ],
        ),
    ):
        report.detail(what)
        result = subprocess.run([*esptool, *command], text=True, capture_output=True)
        for line in result.stdout.splitlines()[-3:]:
            report.detail(line.strip())
        if result.returncode != 0:
            said = (result.stderr or result.stdout).strip().splitlines()
            raise ToolFailed(f"esptool failed {what}: {said[-1] if said else 'exit ' + str(result.returncode)}")


# --- talking to MicroPython ----------------------------------------------------------------------


def _wait_for_port(port: str | None, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        candidates = [port] if port else [found for pattern in PORT_GLOBS for found in sorted(glob.glob(pattern))]
        for candidate in candidates:
            if os.path.exists(candidate):
                return candidate
        time.sleep(0.2)
    raise ToolFailed(f"no board at {port or ' or '.join(PORT_GLOBS)} after {timeout_s:.0f} s; is it plugged in?")


def _stop_application(port: str, timeout_s: float, report: Report) -> None:
    """Ctrl-C: a running application restarts the board into safe mode; a REPL just prompts."""
    try:
        with serial.Serial(port, 115200, timeout=0.1) as line:
            line.write(b"\r\x03\x03")
            seen, deadline = b"", time.monotonic() + 2.0
            while time.monotonic() < deadline and b">>>" not in seen and b"safe mode" not in seen:
                seen += line.read(256)
    except (serial.SerialException, OSError) as exc:
        raise ToolFailed(f"cannot open {port}: {exc}") from None
    if b"safe mode" in seen:
        report.detail("the application stopped; waiting for the board to restart in safe mode")
        time.sleep(1.0)
        _wait_for_port(port, timeout_s)
    elif b">>>" in seen:
        report.detail("at the REPL")
    else:
        raise ToolFailed(f"no MicroPython prompt on {port}: {seen[-60:]!r}")


def _mpremote(port: str, command: list[str], timeout_s: float) -> str:
    try:
        result = subprocess.run(
            [sys.executable, "-m", "mpremote", "connect", port, *command],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        raise ToolFailed(f"mpremote {' '.join(command)}: no answer from the board in {timeout_s:.0f} s") from None
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()
        raise ToolFailed(
            f"mpremote {' '.join(command)} failed: {reason[-1] if reason else 'exit ' + str(result.returncode)}"
        )
    return result.stdout


_HASH_SCRIPT = """
import hashlib, binascii
for name in {names!r}:
    try:
        digest = hashlib.sha256()
        with open(name, 'rb') as f:
            while True:
                chunk = f.read(512)
                if not chunk:
                    break
                digest.update(chunk)
        print('SHA', name, binascii.hexlify(digest.digest()).decode())
    except OSError:
        print('SHA', name, 'missing')
"""


def _hashes_on_board(port: str, names: list[str], timeout_s: float) -> dict[str, str]:
    output = _mpremote(port, ["exec", _HASH_SCRIPT.format(names=names)], timeout_s)
    found = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "SHA":
            found[parts[1]] = parts[2]
    return found


if __name__ == "__main__":
    sys.exit(main())
