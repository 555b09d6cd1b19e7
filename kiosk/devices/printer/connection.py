"""One ESC/POS printer over one of python-escpos's transports, with its real-time status.

Devices are named as ``kiosk.devices.printer.device`` describes. A connection opens lazily and closes itself after
any failure, so an unplugged printer is simply reopened by the next status query or job. Where the transport can
read back (serial, network, USB), the status comes from DLE EOT 1, 2 and 4 (printer, offline cause, paper sensor).
Blocking calls: run them in a worker thread."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Literal

from kiosk.devices.printer.device import PrinterDevice
from kiosk.escpos_api import EscposError, escpos_printer, raw_device, read_answer, write_raw

__all__ = ["PrinterStatus", "PrinterConnection", "PrintError"]

log = logging.getLogger(__name__)

_DLE_EOT = b"\x10\x04"
StatusState = Literal["ready", "paper_out", "cover_open", "offline", "error", "unplugged"]


class PrintError(OSError):
    """A job could not be printed; ``reason`` is one of the ``PrinterStatus`` states."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class PrinterStatus:
    state: StatusState
    paper_near_end: bool = False
    #: False when the printer did not answer the status query (many cheap ones cannot).
    answered: bool = True
    detail: str = ""

    @property
    def ready(self) -> bool:
        return self.state == "ready"


class PrinterConnection:
    def __init__(self, device: PrinterDevice, profile: str, *, timeout_s: float = 1.0) -> None:
        self.device = device
        self.profile = profile
        self.timeout_s = timeout_s
        self._transport: escpos_printer.Escpos | None = None
        self._lock = threading.Lock()

    def status(self) -> PrinterStatus:
        """The printer's state now; never raises."""
        with self._lock:
            try:
                transport = self._open()
            except PrintError as exc:
                return PrinterStatus("unplugged", detail=exc.detail)
            if not self.device.readable:
                return PrinterStatus("ready", answered=False)
            try:
                return self._query(transport)
            except (OSError, EscposError) as exc:
                self._close()
                return PrinterStatus("unplugged", detail=str(exc)[:200])

    def send(self, data: bytes) -> None:
        """Write one whole job; ``PrintError`` if the printer is gone or not ready."""
        with self._lock:
            transport = self._open()
            try:
                write_raw(transport, data)
                flush = getattr(transport.device, "flush", None)
                if callable(flush):
                    flush()
            except (OSError, EscposError, ValueError) as exc:  # ValueError: write to a closed file
                self._close()
                raise PrintError("unplugged", str(exc)[:200]) from None

    def close(self) -> None:
        with self._lock:
            self._close()

    # --- inside the lock ------------------------------------------------------------------------

    def _open(self) -> escpos_printer.Escpos:
        if self._transport is not None:
            return self._transport
        device = self.device
        try:
            if device.kind == "network":
                transport: escpos_printer.Escpos = escpos_printer.Network(
                    device.target, port=device.port, timeout=self.timeout_s, profile=self.profile
                )
            elif device.kind == "serial":
                transport = escpos_printer.Serial(
                    device.target, baudrate=device.baud, timeout=self.timeout_s, dsrdtr=False, profile=self.profile
                )
            elif device.kind == "usb":
                vendor, product = (int(part, 16) for part in device.target.split(":"))
                transport = escpos_printer.Usb(
                    vendor, product, timeout=int(self.timeout_s * 1000), profile=self.profile
                )
            else:
                if device.target.startswith("/dev/") and not os.path.exists(device.target):
                    # Opening would create a plain file where the unplugged device node was.
                    raise OSError(f"{device.target} does not exist")
                transport = escpos_printer.File(device.target, profile=self.profile)
            transport.open(raise_not_found=True)
        except (OSError, EscposError, RuntimeError) as exc:
            raise PrintError("unplugged", f"{device}: {exc}"[:200]) from None
        self._transport = transport
        log.info("printer %s open", device)
        return transport

    def _close(self) -> None:
        if self._transport is not None:
            # Close the raw device first: python-escpos's own close() drains a serial port, which
            # fails (and fails again when the object is collected) once the device has vanished.
            raw = raw_device(self._transport)
            for closer in (getattr(raw, "close", None), self._transport.close):
                try:
                    if callable(closer):
                        closer()
                except Exception:  # a vanished device fails to close in many ways; it is gone
                    pass
            self._transport = None

    def _query(self, transport: escpos_printer.Escpos) -> PrinterStatus:
        printer = self._ask(transport, 1)
        if printer is None:
            return PrinterStatus("ready", answered=False)
        offline = self._ask(transport, 2) or 0x12
        paper = self._ask(transport, 4) or 0x12
        near_end = bool(paper & 0x0C)
        if paper & 0x60 or offline & 0x20:
            return PrinterStatus("paper_out", near_end)
        if offline & 0x04:
            return PrinterStatus("cover_open", near_end)
        if offline & 0x40:
            return PrinterStatus("error", near_end)
        if printer & 0x08:
            return PrinterStatus("offline", near_end)
        return PrinterStatus("ready", near_end)

    def _ask(self, transport: escpos_printer.Escpos, kind: int) -> int | None:
        """One DLE EOT query; None when no valid status byte comes back in time."""
        write_raw(transport, _DLE_EOT + bytes([kind]))
        try:
            if self.device.kind == "serial":
                answer = transport.device.read(1)  # returns on the first byte; _read() waits for 16
            else:
                answer = read_answer(transport)
        except TimeoutError:
            return None
        if not answer and self.device.kind == "network":
            # recv() returning nothing is the peer closing the connection, not a silent printer.
            raise ConnectionResetError("the printer closed the connection")
        if not answer:
            return None
        byte = answer[-1]
        return byte if byte & 0x93 == 0x12 else None  # fixed bits of every status byte
