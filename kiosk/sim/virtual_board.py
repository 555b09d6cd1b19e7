"""A virtual I/O board: the real firmware running in MicroPython's WebAssembly port under node,
with the fake ``machine`` of ``firmware/sim``, its link UART served on a pseudo-terminal.

The kiosk opens the pseudo-terminal with pyserial as it opens ``/dev/kiosk-board``. The test (or a
person at ``kiosk sim board``) types codes into the scanner UART, moves the slot sensor's pin and
reads the lights from the PWM duty cycles. Like a USB CDC port with nobody listening, bytes the
board writes while the kiosk has the port closed are dropped.
"""

from __future__ import annotations

import binascii
import json
import runpy
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.board import link
from kiosk.sim.pty_port import PtyPort, wait_for
from kiosk.tools.firmware_files import FIRMWARE_DIR, stage

__all__ = ["VirtualBoard", "simulator_available"]

_RUNNER = FIRMWARE_DIR / "tests" / "board_sim.mjs"


def simulator_available() -> bool:
    """node and the pinned MicroPython package are installed (``make test`` installs them)."""
    package = FIRMWARE_DIR / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
    return shutil.which("node") is not None and package.is_dir()


class VirtualBoard:
    """Start with ``start()`` (or as a context manager); ``device`` is the path the kiosk opens."""

    def __init__(self, *, files: dict[str, bytes] | None = None, pins_at_boot: dict[int, int] | None = None) -> None:
        pins = runpy.run_path(str(FIRMWARE_DIR / "board" / "boardcfg.py"))["VARIANTS"]["webassembly"]
        self.pins: dict[str, Any] = pins
        self._files = files
        self._pins_at_boot = pins_at_boot or {}
        self._dir = Path(tempfile.mkdtemp(prefix="virtual-board-"))
        self._port = PtyPort()
        self.device = self._port.path
        self._node: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._duty: dict[int, int] = {}  # PWM pin -> duty (0-65535)
        self._freq: dict[int, int] = {}  # PWM pin -> frequency
        self.tones: list[int] = []  # frequencies the buzzer sounded, in order
        self.logs: list[str] = []
        self.resets: list[str] = []
        #: Messages the board sent, decoded: (type, seq, body); and the bytes themselves, to replay.
        self.sent: list[tuple[int, int, bytes]] = []
        self.wire = bytearray()
        self._tap = link.FrameDecoder()

    # --- life -----------------------------------------------------------------------------------

    def start(self) -> VirtualBoard:
        root = self._dir / "flash"
        if self._files is None:
            stage(root)
        else:
            root.mkdir()
            for name, data in self._files.items():  # a name may hold folders ("usb/device/cdc.py")
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(data)
        self.reboot()
        self._port.pump_to(self._to_board, name="board-in")
        return self

    def power_off(self) -> None:
        """The board stops dead (unplugged, or hung before its watchdog fires)."""
        if self._node is not None and self._node.poll() is None:
            self._node.kill()
            self._node.wait()

    def reboot(self) -> None:
        """Power off and start the same firmware again, as after a reset."""
        self.power_off()
        pins = [f"{pin}={level}" for pin, level in self._pins_at_boot.items()]
        self._node = subprocess.Popen(
            ["node", str(_RUNNER), str(self._dir / "flash"), *pins],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=FIRMWARE_DIR,
        )
        threading.Thread(target=self._from_board, args=(self._node,), name="board-out", daemon=True).start()

    def stop(self) -> None:
        self.power_off()
        self._port.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> VirtualBoard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._node is not None and self._node.poll() is None

    # --- the outside world ----------------------------------------------------------------------

    def scan(self, code: str, terminator: bytes = b"\r") -> None:
        """The scanner module reads ``code`` and sends it on its UART."""
        self._command(uart=self.pins["scanner_uart"], hex=(code.encode() + terminator).hex())

    def slot_pass(self, blocked_s: float = 0.08) -> None:
        """Packaging falls through the slot: the beam is blocked for ``blocked_s``."""
        blocked = self.pins["slot_blocked_level"]
        self._command(pin=self.pins["slot_pin"], level=blocked)
        time.sleep(blocked_s)
        self._command(pin=self.pins["slot_pin"], level=1 - blocked)

    def to_board(self, data: bytes) -> None:
        """Bytes arriving on the board's link UART, as if the kiosk sent them (garbage, say)."""
        self._command(uart=self.pins["link_uart"], hex=data.hex())

    def to_kiosk(self, data: bytes) -> None:
        """Bytes on the line towards the kiosk, as if the board sent them."""
        self._port.write(data)

    def break_uart(self, uart: int, text: str) -> None:
        """Every read from that UART raises from now on (a task crashes; the watchdog must act)."""
        self._command(uart_fail=uart, text=text)

    @property
    def nonce(self) -> bytes:
        """The session nonce the board's last hello echoed (b"" before the first)."""
        return self._tap.nonce

    @property
    def lights(self) -> tuple[int, int, int]:
        """The LED's (red, green, blue), 0-255."""
        red, green, blue = (self._duty.get(pin, 0) // 257 for pin in self.pins["led_pins"])
        return red, green, blue

    def wait_for(self, condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
        return wait_for(condition, timeout_s)

    # --- pumps ----------------------------------------------------------------------------------

    def _command(self, **command: Any) -> None:
        assert self._node is not None and self._node.stdin is not None
        with self._lock:
            self._node.stdin.write(json.dumps(command).encode() + b"\n")
            self._node.stdin.flush()

    def _from_board(self, node: subprocess.Popen[bytes]) -> None:
        assert node.stdout is not None
        for line in node.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                self.logs.append(line.decode(errors="replace").rstrip())
                continue
            if event.get("uart") == self.pins["link_uart"]:
                data = binascii.unhexlify(event["hex"])
                self.wire += data
                self._overhear(data)
                self._port.write(data)
            elif "pwm" in event and "duty" in event:
                self._duty[event["pwm"]] = event["duty"]
                if event["pwm"] == self.pins["buzzer_pin"] and event["duty"]:
                    self.tones.append(self._freq.get(event["pwm"], 0))
            elif "pwm" in event and "freq" in event:
                self._freq[event["pwm"]] = event["freq"]
            elif "log" in event:
                self.logs.append(event["log"])
            elif "reset" in event:
                self.resets.append(event["reset"])

    def _overhear(self, data: bytes) -> None:
        """Decode what the board sends into ``sent``, following the session nonce its hellos echo."""
        pieces = data.split(b"\x00")
        for index, piece in enumerate(pieces):
            for message in self._tap.feed(piece + (b"\x00" if index < len(pieces) - 1 else b"")):
                self.sent.append(message)
                hello = link.read_hello(message[2]) if message[0] == link.HELLO else None
                if hello is not None and hello[1] is not None:
                    self._tap.nonce = hello[1]

    def _to_board(self, data: bytes) -> None:
        """The kiosk's bytes onto the board's UART. A board switched off or unplugged hears nothing,
        as a real one: bytes that arrive as its process ends are dropped, not a dead pump thread."""
        if self.running:
            try:
                self._command(uart=self.pins["link_uart"], hex=data.hex())
            except (BrokenPipeError, ValueError):  # the process is going (ValueError: stdin closed)
                return
