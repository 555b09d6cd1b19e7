"""The kiosk's status document: what the technician's ``/status`` page shows, in one typed shape.

One object, built from the running parts when asked, so every reader of the kiosk's state (the page,
the log, later the fleet's reports and metrics) reads the same fields. It carries no secret: no
token, no voucher code, no link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["BoardStatus", "KioskStatus"]


@dataclass(frozen=True)
class BoardStatus:
    """The I/O board: its hello (firmware, manifest, variant, link) and its latest complaints."""

    firmware: dict[str, Any] | None
    errors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"firmware": self.firmware, "errors": list(self.errors)}


@dataclass(frozen=True)
class KioskStatus:
    #: The flow's state (``kiosk.core.flow.State`` value) and the language the customer sees.
    state: str
    locale: str
    hardware_id: str
    #: True while the backend does not answer and vouchers come from the offline cache.
    offline: bool
    #: Each scan source's name and state ("open", "missing", "restarting", ...).
    scanners: dict[str, str] = field(default_factory=dict)
    board: BoardStatus | None = None
    #: The printer's state ("ready", "paper_out", ...), None without a printer or before its first poll.
    printer: str | None = None
    #: Each supervised task's health (``Supervisor.status``).
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: A reader's own figures, by its name: a camera's resolution, fps delivered, decode times, frames dropped.
    readers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "locale": self.locale,
            "hardware_id": self.hardware_id,
            "offline": self.offline,
            "scanners": dict(self.scanners),
            "board": self.board.to_json() if self.board is not None else None,
            "printer": self.printer,
            "tasks": self.tasks,
            "readers": self.readers,
        }
