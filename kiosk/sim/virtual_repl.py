"""A MicroPython REPL on a pseudo-terminal: the WebAssembly port's own friendly and raw REPL
(firmware/tests/repl_sim.mjs), so mpremote, and the flash tool through it, talk to it exactly as
to a board on /dev/ttyACM0. Its filesystem lives as long as the process, like a board's flash."""

from __future__ import annotations

import os
import subprocess
import threading

from kiosk.sim.pty_port import PtyPort
from kiosk.tools.firmware_files import FIRMWARE_DIR

__all__ = ["VirtualRepl"]


class VirtualRepl:
    def __init__(self) -> None:
        self._port = PtyPort()
        self.device = self._port.path
        self._node = subprocess.Popen(
            ["node", str(FIRMWARE_DIR / "tests" / "repl_sim.mjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=FIRMWARE_DIR,
            bufsize=0,
        )
        threading.Thread(target=self._out, daemon=True).start()
        self._port.pump_to(self._in, name="repl-in")

    def _out(self) -> None:
        assert self._node.stdout is not None
        while data := os.read(self._node.stdout.fileno(), 4096):
            self._port.write(data)

    def _in(self, data: bytes) -> None:
        assert self._node.stdin is not None
        self._node.stdin.write(data)

    def close(self) -> None:
        self._node.kill()
        self._node.wait()
        self._port.close()

    def __enter__(self) -> VirtualRepl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
