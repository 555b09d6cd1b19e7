"""A MicroPython REPL on a pseudo-terminal: the WebAssembly port's own friendly and raw REPL
(firmware/tests/repl_sim.mjs), so mpremote, and the flash tool through it, talk to it exactly as
to a board on /dev/ttyACM0. Its filesystem lives as long as the process, like a board's flash."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import tty

from kiosk.tools.firmware_files import FIRMWARE_DIR

__all__ = ["VirtualRepl"]


class VirtualRepl:
    def __init__(self) -> None:
        self._master, slave = os.openpty()
        tty.setraw(slave)
        self.device = os.ttyname(slave)
        os.close(slave)
        self._node = subprocess.Popen(["node", str(FIRMWARE_DIR / "tests" / "repl_sim.mjs")], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, cwd=FIRMWARE_DIR, bufsize=0)  # fmt: skip
        self._stopping = False
        threading.Thread(target=self._out, daemon=True).start()
        threading.Thread(target=self._in, daemon=True).start()

    def _out(self) -> None:
        assert self._node.stdout is not None
        while data := os.read(self._node.stdout.fileno(), 4096):
            try:
                os.write(self._master, data)
            except OSError:
                pass  # nobody has the port open: dropped, as on USB

    def _in(self) -> None:
        assert self._node.stdin is not None
        while not self._stopping:
            try:
                data = os.read(self._master, 4096)
            except OSError:  # EIO while no one has the other end open
                time.sleep(0.01)
                continue
            if not data:
                return
            self._node.stdin.write(data)

    def close(self) -> None:
        self._stopping = True
        self._node.kill()
        self._node.wait()
        os.close(self._master)

    def __enter__(self) -> "VirtualRepl":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
