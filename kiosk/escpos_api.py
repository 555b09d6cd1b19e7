"""The one place that touches python-escpos beyond its public interface.

Its public methods decide for us what a job holds (``text()`` and ``ln()`` select code pages behind
our back, ``close()`` drains a vanished serial port), so the kiosk writes the bytes it has laid out
itself and reads status bytes itself, through three private members: ``_raw`` (write bytes as they
are), ``_read`` (read the answer to a status query) and ``_device`` (the transport's own handle, to
close it first when the device has gone). They are used here only, and python-escpos is pinned to
the minor version this was written against (pyproject.toml: 3.1). The capability database
(``profile_data``) is public and read here too, so the paper and the simulated printer share one
table of code pages.
"""

from __future__ import annotations

import codecs
from functools import lru_cache
from typing import Any

from escpos.escpos import Escpos
from escpos.printer import Dummy

__all__ = ["write_raw", "read_answer", "raw_device", "profile_data", "code_pages"]


def write_raw(printer: Escpos, data: bytes) -> None:
    """Send ``data`` exactly as it is."""
    printer._raw(data)


def read_answer(printer: Escpos) -> bytes:
    """The bytes a printer answered to a status query (network and USB transports)."""
    return bytes(printer._read() or b"")


def raw_device(printer: Escpos) -> Any:
    """The transport's own handle (a file, a socket, a serial port), or None."""
    return getattr(printer, "_device", None)


@lru_cache(maxsize=8)
def profile_data(profile: str) -> dict[str, Any]:
    """The profile's entry in python-escpos's capability database."""
    data: dict[str, Any] = Dummy(profile=profile).profile.profile_data
    return data


@lru_cache(maxsize=8)
def code_pages(profile: str) -> dict[int, str]:
    """ESC t number -> Python codec, for the profile's code pages Python can encode."""
    pages = {}
    for number, name in sorted(profile_data(profile).get("codePages", {}).items(), key=lambda kv: int(kv[0])):
        try:
            pages[int(number)] = codecs.lookup(name.replace("_", "-")).name
        except LookupError:
            continue
    return pages
