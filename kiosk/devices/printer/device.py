"""Printer device names, as the configuration and the command line write them. Parsing only, so
reading a configuration does not load the printer library.

    /dev/usb/lp0, ./out.bin          a file or character device (write only)
    serial:/dev/serial/by-id/...     a serial port (pyserial), baud from the configuration
    tcp://192.0.2.10:9100            a network printer (raw TCP, port 9100 by default)
    usb:04b8:0e15                    a USB printer by vendor and product id (pyusb)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["PrinterDevice", "DeviceError"]


class DeviceError(ValueError):
    """A printer device name that cannot be understood."""


@dataclass(frozen=True)
class PrinterDevice:
    kind: Literal["file", "serial", "network", "usb"]
    target: str
    port: int = 9100
    baud: int = 9600

    @classmethod
    def parse(cls, text: str, *, baud: int = 9600) -> PrinterDevice:
        if text.startswith("tcp://"):
            match = re.fullmatch(r"tcp://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+)(?::([0-9]{1,5}))?/?", text)
            port = int(match.group(2) or 9100) if match else 0
            if not match or not 1 <= port <= 65535:
                raise DeviceError(f"{text!r}: expected tcp://HOST:PORT with a port from 1 to 65535")
            return cls("network", match.group(1).strip("[]"), port, baud)
        if text.startswith("usb:"):
            if not re.fullmatch(r"usb:[0-9a-fA-F]{4}:[0-9a-fA-F]{4}", text):
                raise DeviceError(f"{text!r}: expected usb:VID:PID in hexadecimal, such as usb:04b8:0e15")
            return cls("usb", text[4:].lower(), baud=baud)
        if text.startswith("serial:"):
            return cls("serial", text[7:], baud=baud)
        if not text:
            raise DeviceError("the printer device is empty")
        return cls("file", text, baud=baud)

    @property
    def readable(self) -> bool:
        """Whether the printer can answer status queries over this transport."""
        return self.kind != "file"

    def __str__(self) -> str:
        return {
            "file": self.target,
            "serial": f"serial:{self.target}",
            "network": f"tcp://{self.target}:{self.port}",
            "usb": f"usb:{self.target}",
        }[self.kind]
