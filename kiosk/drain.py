"""``kiosk drain``: before an upgrade restarts the kiosk, the running kiosk finishes with the customer
in front of it and holds new scans for a few seconds, so nobody is cut off mid-voucher.

The protocol, on a Unix socket only root and the kiosk can reach (DEFAULT_SOCKET, in the unit's
RuntimeDirectory): the client sends ``drain HOLD_S\\n``; the kiosk starts holding new scans for
HOLD_S seconds (a scan in that time waits, it is not dropped) and answers ``idle\\n`` as soon as its
flow is idle (no voucher on screen, no issuance under way). The client gives up after its timeout.
No socket means no kiosk running: there is nothing to drain.

The runtime serves it with ``DrainListener(path, is_idle, hold_scans)`` under the supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from pathlib import Path

__all__ = ["DEFAULT_SOCKET", "DrainListener", "drain", "socket_path"]

DEFAULT_SOCKET = Path("/run/kiosk/control.sock")


def socket_path() -> Path | None:
    """Where a running kiosk listens: in the RuntimeDirectory systemd made for the unit
    (``RUNTIME_DIRECTORY``); None outside systemd (a demo, a test), where nobody drains it."""
    runtime = os.environ.get("RUNTIME_DIRECTORY")
    return Path(runtime.split(":")[0]) / DEFAULT_SOCKET.name if runtime else None


_POLL_S = 0.1
#: The longest request line the kiosk reads ("drain 600\n" is 10 bytes).
_MAX_REQUEST = 256


class DrainListener:
    """Answers drain requests for the running kiosk: ``is_idle`` tells whether the flow is idle,
    ``hold_scans(seconds)`` makes it hold new scans that long."""

    def __init__(self, path: Path, is_idle: Callable[[], bool], hold_scans: Callable[[float], None]) -> None:
        self.path = path
        self._is_idle = is_idle
        self._hold_scans = hold_scans
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old = os.umask(0o077)  # the socket is the kiosk's (and root's) alone from the first moment
        try:
            # A request is one short line: anything longer is refused, not buffered.
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path), limit=_MAX_REQUEST)
        finally:
            os.umask(old)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                line = await asyncio.wait_for(reader.readline(), timeout=5)
            except ValueError:  # a line longer than any request (asyncio's LimitOverrunError)
                line = b""
            hold = _parse_request(line)
            if hold is None:
                writer.write(b"error\n")
                return
            self._hold_scans(hold)
            while not self._is_idle():
                with contextlib.suppress(TimeoutError):  # waits, and hears a client that gave up
                    if await asyncio.wait_for(reader.read(1), timeout=_POLL_S) == b"":
                        return
            writer.write(b"idle\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


def _parse_request(line: bytes) -> float | None:
    """The hold time of ``drain HOLD_S``, or None for anything else (0-600 s)."""
    parts = line.decode("ascii", "replace").split()
    if len(parts) != 2 or parts[0] != "drain":
        return None
    try:
        hold = float(parts[1])
    except ValueError:
        return None
    return hold if 0 <= hold <= 600 else None


def drain(path: Path, hold_s: float, timeout_s: float) -> tuple[int, str]:
    """Asks the running kiosk to drain; (exit code, what happened): 0 idle or not running, 1 not
    idle in time, 2 a kiosk that does not speak the protocol."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(timeout_s)
    try:
        client.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        client.close()
        return 0, "no kiosk is running: nothing to drain"
    try:
        client.sendall(f"drain {hold_s:g}\n".encode())
        answer = client.makefile("rb").readline()
    except TimeoutError:
        return 1, f"the kiosk was not idle within {timeout_s:g} s"
    finally:
        client.close()
    if answer == b"idle\n":
        return 0, f"the kiosk is idle; new scans are held for {hold_s:g} s"
    return 2, "the kiosk did not understand the drain request"
