"""The printer's self-test ticket, for ``kiosk printer test`` and for provisioning alike."""

from __future__ import annotations

import socket

from kiosk import __version__
from kiosk.devices.printer.connection import PrinterConnection, PrinterStatus
from kiosk.devices.printer.device import PrinterDevice
from kiosk.presentation.paper import TestTicket, render_test_ticket

__all__ = ["PrinterNotReady", "print_test_ticket", "local_address"]


class PrinterNotReady(OSError):
    """The printer answered that it cannot print now (paper out, cover open, ...)."""


def print_test_ticket(
    device: PrinterDevice, profile: str, *, hardware_id: str | None = None, screen_port: int = 8080
) -> PrinterStatus:
    """Check the printer's status, then print the ticket: version, hardware id, this machine's
    address and a QR code of its status page. ``PrinterNotReady`` or another ``OSError`` when the
    ticket could not be printed; the status it was printed with otherwise."""
    address = local_address()
    ticket = TestTicket(
        version=__version__,
        hardware_id=hardware_id or socket.gethostname(),
        address=address,
        status_url=f"http://{address}:{screen_port}/status",
        profile=profile,
    )
    connection = PrinterConnection(device, profile)
    try:
        status = connection.status()
        if not status.ready:
            raise PrinterNotReady(f"{status.state} {status.detail}".rstrip())
        connection.send(render_test_ticket(ticket))
        return status
    finally:
        connection.close()


def local_address() -> str:
    """This machine's address on its network, for the technician's status link."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"
