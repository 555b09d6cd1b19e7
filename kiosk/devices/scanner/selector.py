"""How configuration names a USB HID scanner, parsed without touching a device or evdev, so the
configuration checker can refuse a bad selector on any machine (as ``printer/device.py`` does for
printers)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

__all__ = ["HidSelector"]


@dataclass(frozen=True)
class HidSelector:
    """Which input device is the scanner: ``usb:VID:PID``, ``name:REGEX`` or a path."""

    kind: str  # "usb" | "name" | "path"
    value: str

    @classmethod
    def parse(cls, text: str) -> HidSelector:
        if text.startswith("usb:"):
            if not re.fullmatch(r"usb:[0-9a-fA-F]{4}:[0-9a-fA-F]{4}", text):
                raise ValueError(f"{text!r}: expected usb:VID:PID in hexadecimal")
            return cls("usb", text[4:].lower())
        if text.startswith("name:"):
            try:
                re.compile(text[5:])
            except (re.error, OverflowError, RecursionError) as exc:  # a repeat too large, nesting too deep
                raise ValueError(
                    f"{text[:40]!r}: not a regular expression Python can use ({type(exc).__name__})"
                ) from None
            return cls("name", text[5:])
        return cls("path", text)

    def matches(self, path: str, name: str, vendor: int, product: int) -> bool:
        if self.kind == "usb":
            return f"{vendor:04x}:{product:04x}" == self.value
        if self.kind == "name":
            return re.search(self.value, name) is not None
        return os.path.realpath(self.value) == os.path.realpath(path)
