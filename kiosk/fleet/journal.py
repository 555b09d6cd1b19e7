"""Log records straight into systemd's journal, in its native protocol (systemd.journal-fields(7)),
when the kiosk's standard error is the journal.

Why native rather than ``<3>`` priority prefixes on standard error: a prefix carries the priority
alone, while a native entry carries fields an operator filters on (``journalctl -u rezip-kiosk
KIOSK_STATE=issuing``, ``SCAN_ID=12``, ``PRIORITY=3``) and keeps a traceback in one entry instead of
one entry per line. The text is the scrubbed line the stream handler would write (``kiosk.logs``:
no token, voucher code or link), and the extra fields come from fixed vocabularies and counters.
When the journal's socket refuses an entry, the line goes to the stream as before.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
from collections.abc import Callable, Mapping
from typing import TextIO

__all__ = ["JournalHandler", "journal_handler_for", "PRIORITIES"]

JOURNAL_SOCKET = "/run/systemd/journal/socket"
#: Python's levels as syslog priorities (journalctl -p): error 3, warning 4, info 6, debug 7.
PRIORITIES = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}
#: Record attributes (``log.info(..., extra={"scan_id": 12})``) that become journal fields.
_EXTRA_FIELDS = {"scan_id": "SCAN_ID", "kiosk_state": "KIOSK_STATE"}


class JournalHandler(logging.Handler):
    """``context()`` adds fields of the moment to every entry (the flow's state)."""

    def __init__(
        self,
        fallback: TextIO,
        *,
        address: str = JOURNAL_SOCKET,
        identifier: str = "kiosk",
        context: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        super().__init__()
        self.fallback = fallback
        self.address = address
        self.identifier = identifier
        self.context = context
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            fields = {
                "MESSAGE": message,
                "PRIORITY": str(_priority(record.levelno)),
                "SYSLOG_IDENTIFIER": self.identifier,
                "KIOSK_LOGGER": record.name,
                "CODE_FILE": record.pathname,
                "CODE_LINE": str(record.lineno),
                "CODE_FUNC": record.funcName,
            }
            for attribute, name in _EXTRA_FIELDS.items():
                value = record.__dict__.get(attribute)
                if value is not None:
                    fields[name] = str(value)
            if self.context is not None:
                for name, value in self.context().items():
                    fields.setdefault(name, value)
            try:
                self._socket.sendto(encode_entry(fields), self.address)
            except OSError:  # too large for a datagram, or journald restarting: the stream has it
                self.fallback.write(message + "\n")
                self.fallback.flush()
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        self._socket.close()
        super().close()


def encode_entry(fields: Mapping[str, str]) -> bytes:
    """One journal entry: ``NAME=value`` lines, or for a value holding a line break, the name, a
    newline, its length as 64-bit little-endian and the value."""
    parts: list[bytes] = []
    for name, value in fields.items():
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            parts.append(name.encode("ascii") + b"\n" + struct.pack("<Q", len(data)) + data + b"\n")
        else:
            parts.append(name.encode("ascii") + b"=" + data + b"\n")
    return b"".join(parts)


def journal_handler_for(stream: TextIO, environ: Mapping[str, str] = os.environ) -> JournalHandler | None:
    """A journal handler when ``stream`` is the journal (``JOURNAL_STREAM`` names its device and
    inode, as systemd sets it for a service's standard output and error), else None."""
    expected = environ.get("JOURNAL_STREAM", "")
    device, _, inode = expected.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return None
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):  # no file descriptor (a test's StringIO)
        return None
    if (info.st_dev, info.st_ino) != (int(device), int(inode)) or not os.path.exists(JOURNAL_SOCKET):
        return None
    return JournalHandler(stream)


def _priority(level: int) -> int:
    for threshold in sorted(PRIORITIES, reverse=True):
        if level >= threshold:
            return PRIORITIES[threshold]
    return 7
