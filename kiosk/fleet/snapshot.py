"""One reading of the running kiosk: what the metrics, the ``STATUS=`` line, the health report and
the status page all show, taken in one place so they agree.

A snapshot holds no voucher code, link or token: shops by id, devices by state, counts and ages.
It is taken on the event loop (it reads the offline store's SQLite connection, which the loop owns).
"""

from __future__ import annotations

import copy
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from kiosk import __version__, build_info
from kiosk.core.instants import iso_z
from kiosk.logs import ScrubbingFormatter
from kiosk.status import KioskStatus

__all__ = [
    "KioskSnapshot",
    "SnapshotTaker",
    "ContactWatch",
    "RecentErrors",
    "status_line",
]

#: How many of the newest error lines a snapshot carries.
ERRORS_KEPT = 5


@dataclass(frozen=True)
class KioskSnapshot:
    hardware_id: str
    version: str
    commit: str
    uptime_s: float
    flow_state: str
    #: The backend answered the last time it was asked (the screen's offline banner is off).
    online: bool
    #: Seconds since the backend last answered anything (None: not since this kiosk's journal began).
    backend_last_heard_s: float | None
    #: The kiosk's clock minus the time the backend last vouched for (None: not known yet).
    clock_offset_s: float | None
    #: None without a printer; else its state (``PrinterStatus.state``) and DLE EOT 4's near-end bit.
    printer_state: str | None
    paper_near_end: bool | None
    #: None without an I/O board; else its scan source's state ("open" when connected).
    board_state: str | None
    scanners: dict[str, str]
    #: Unclaimed offline codes per shop id.
    offline_codes: dict[str, int]
    journal_pending: int
    oldest_pending_age_s: float | None
    last_errors: list[str]
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def board_connected(self) -> bool | None:
        return None if self.board_state is None else self.board_state == "open"

    def to_json(self) -> dict[str, Any]:
        """The health report's and the status page's document (see README, "Health reports")."""
        doc = asdict(self)
        doc["uptime_s"] = round(self.uptime_s, 1)
        for key in ("backend_last_heard_s", "clock_offset_s", "oldest_pending_age_s"):
            if doc[key] is not None:
                doc[key] = round(doc[key], 1)
        doc["offline_codes_left"] = sum(self.offline_codes.values())
        return doc


def status_line(snapshot: KioskSnapshot) -> str:
    """The one human line for ``systemctl status``: ``idle · printer ready · 37 offline codes · online``."""
    parts = [snapshot.flow_state.replace("_", " ")]
    if snapshot.printer_state is not None:
        printer = f"printer {snapshot.printer_state.replace('_', ' ')}"
        parts.append(printer + (", paper low" if snapshot.paper_near_end else ""))
    if snapshot.board_state is not None and snapshot.board_state != "open":
        parts.append(f"board {snapshot.board_state}")
    parts.append(f"{sum(snapshot.offline_codes.values())} offline codes")
    if snapshot.journal_pending:
        parts.append(f"{snapshot.journal_pending} to forward")
    parts.append("online" if snapshot.online else "offline")
    return " · ".join(parts)


class ContactWatch:
    """When the backend last answered: any answer counts (a refusal is an answer too)."""

    def __init__(self, *, last_contact: datetime | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._heard_at: float | None = None
        if last_contact is not None:  # from the journal: before this process started
            age = max(0.0, (datetime.now(UTC) - last_contact).total_seconds())
            self._heard_at = clock() - age

    def answered(self) -> None:
        """The backend sent an HTTP answer, whatever its status."""
        self._heard_at = self._clock()

    def seconds_since(self) -> float | None:
        return None if self._heard_at is None else self._clock() - self._heard_at


class RecentErrors(logging.Handler):
    """The newest error lines the kiosk logged, for the status document and the health report:
    scrubbed like every log line (``kiosk.logs``), without tracebacks (those stay in the journal)."""

    def __init__(self, kept: int = ERRORS_KEPT) -> None:
        super().__init__(logging.ERROR)
        self.setFormatter(ScrubbingFormatter("%(name)s: %(message)s"))
        self.lines: deque[str] = deque(maxlen=kept)

    def emit(self, record: logging.LogRecord) -> None:
        bare = copy.copy(record)
        bare.exc_info = bare.exc_text = bare.stack_info = None
        try:
            line = self.format(bare)
        except Exception:  # a record whose arguments do not fit its message
            line = f"{record.name}: {record.msg!s}"
        stamp = iso_z(datetime.fromtimestamp(record.created, UTC))
        self.lines.append(f"{stamp} {''.join(ch if ch.isprintable() else ' ' for ch in line)[:300]}")


class _Store(Protocol):
    def available(self) -> list[Any]: ...

    def pending(self, limit: int = ...) -> list[dict[str, Any]]: ...


@dataclass
class SnapshotTaker:
    """Reads the kiosk: the typed status document (``RunningKiosk.status``) for what the page shows
    too, and small callables for the rest, so tests and tools can stand in for any part."""

    status: Callable[[], KioskStatus]
    store: _Store | None
    contact: ContactWatch
    #: Whether a printer is configured (the status says None both without one and before its first poll).
    has_printer: bool = False
    paper_near_end: Callable[[], bool] = lambda: False
    board: Callable[[], str | None] = lambda: None
    expected_now: Callable[[], datetime | None] = lambda: None
    errors: RecentErrors | None = None
    started: float = field(default_factory=time.monotonic)
    #: Pending journal entries are counted up to this many (the offline limit stops far below).
    pending_limit: int = 100_000

    def take(self) -> KioskSnapshot:
        now = datetime.now(UTC)
        status = self.status()
        codes: dict[str, int] = {}
        pending: list[dict[str, Any]] = []
        if self.store is not None:
            for row in self.store.available():
                codes[row["shop_id"]] = codes.get(row["shop_id"], 0) + int(row["count"])
            pending = self.store.pending(self.pending_limit)
        oldest = min((entry["issued_at"] for entry in pending), default=None)
        expected = self.expected_now()
        return KioskSnapshot(
            hardware_id=status.hardware_id,
            version=__version__,
            commit=build_info.commit(),
            uptime_s=time.monotonic() - self.started,
            flow_state=status.state,
            online=not status.offline,
            backend_last_heard_s=self.contact.seconds_since(),
            clock_offset_s=(now - expected).total_seconds() if expected is not None else None,
            printer_state=(status.printer or "unknown") if self.has_printer else None,
            paper_near_end=self.paper_near_end() if self.has_printer else None,
            board_state=self.board(),
            scanners=dict(status.scanners),
            offline_codes=codes,
            journal_pending=len(pending),
            oldest_pending_age_s=(now - datetime.fromisoformat(oldest)).total_seconds() if oldest else None,
            last_errors=list(self.errors.lines) if self.errors is not None else [],
            tasks=status.tasks,
        )
