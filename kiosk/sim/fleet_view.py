"""The stand-in backend's side of the health-report API (``kiosk.fleet.health_client``): the latest
report of each kiosk, and the operator's fleet view, stale kiosks and kiosks in trouble first.

Reports are untrusted input: the view keeps only the fields it knows, each of its expected type and
size, and the HTML page escapes every one of them.
"""

from __future__ import annotations

import html
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kiosk.fleet.health_client import MAX_BATCH

__all__ = ["FleetBoard", "problems", "clean_report", "ReportError"]

#: A kiosk that has not reported for this long is stale (three missed reports at the default 300 s).
STALE_AFTER_S = 900.0
#: Below this many offline codes, a kiosk cannot bridge a long outage.
LOW_CODES = 5
#: A journal entry older than this that the backend has not taken: forwarding is stuck.
OLD_PENDING_S = 3600.0
_HARDWARE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_TEXT = {
    "version",
    "commit",
    "flow_state",
    "printer_state",
    "board_state",
    "sent_at",
    "source",
}
_NUMBERS = {
    "uptime_s",
    "backend_last_heard_s",
    "clock_offset_s",
    "journal_pending",
    "oldest_pending_age_s",
    "offline_codes_left",
    "dropped_reports",
}
_FLAGS = {"online", "paper_near_end"}


class ReportError(ValueError):
    """A body that is not a batch of reports."""


@dataclass
class _Latest:
    report: dict[str, Any]
    drop_point: str
    received_at: float


def clean_report(raw: Any) -> dict[str, Any]:
    """The fields of one report the view uses, each checked; ``ReportError`` without a usable
    ``hardware_id``."""
    if not isinstance(raw, dict):
        raise ReportError("each report must be a JSON object")
    hardware_id = raw.get("hardware_id")
    if not isinstance(hardware_id, str) or not _HARDWARE_ID.fullmatch(hardware_id):
        raise ReportError("hardware_id: must be the kiosk's identifier (letters, digits, . _ : -)")
    report: dict[str, Any] = {"hardware_id": hardware_id}
    for key, value in raw.items():
        if key in _TEXT and isinstance(value, str):
            report[key] = _one_line(value, 80)
        elif key in _NUMBERS and _finite(value):
            report[key] = value
        elif key in _FLAGS and isinstance(value, bool):
            report[key] = value
    scanners = raw.get("scanners")
    if isinstance(scanners, dict):
        report["scanners"] = {
            _one_line(str(name), 60): _one_line(state, 40)
            for name, state in list(scanners.items())[:8]
            if isinstance(state, str)
        }
    errors = raw.get("last_errors")
    if isinstance(errors, list):
        report["last_errors"] = [_one_line(line, 300) for line in errors[:5] if isinstance(line, str)]
    checks = raw.get("checks")
    if isinstance(checks, list):
        report["checks"] = [
            {"item": _one_line(c["item"], 60), "ok": c["ok"], "detail": _one_line(c.get("detail", ""), 200)}
            for c in checks[:20]
            if isinstance(c, dict)
            and isinstance(c.get("item"), str)
            and isinstance(c.get("ok"), bool)
            and isinstance(c.get("detail", ""), str)
        ]
    return report


def problems(report: dict[str, Any]) -> list[str]:
    """What is wrong with a kiosk, by its latest report (empty: nothing)."""
    found = []
    printer = report.get("printer_state")
    if printer not in (None, "ready"):
        found.append(f"printer {printer}")
    if report.get("paper_near_end"):
        found.append("paper low")
    board = report.get("board_state")
    if board not in (None, "open"):
        found.append(f"board {board}")
    if report.get("online") is False:
        found.append("backend unreachable")
    codes = report.get("offline_codes_left")
    if codes is not None and codes < LOW_CODES:
        found.append(f"{codes:g} offline codes left")
    if report.get("journal_pending") and (report.get("oldest_pending_age_s") or 0) > OLD_PENDING_S:
        found.append(f"{report['journal_pending']:g} issuances not forwarded")
    for check in report.get("checks", []):
        if not check["ok"] and not any(check["item"] in line for line in found):
            found.append(f"{check['item']}: {check['detail']}")
    return found


class FleetBoard:
    """The latest report per kiosk (by hardware id), kept in memory like a dashboard's cache."""

    def __init__(self, *, stale_after_s: float = STALE_AFTER_S, clock: Callable[[], float] = time.time) -> None:
        self.stale_after_s = stale_after_s
        self.clock = clock
        self._latest: dict[str, _Latest] = {}
        self._lock = threading.Lock()

    def receive(self, drop_point: str, body: Any) -> int:
        """Take a batch ``{"reports": [...]}``; returns how many were accepted."""
        reports = body.get("reports") if isinstance(body, dict) else None
        if not isinstance(reports, list) or not 0 < len(reports) <= MAX_BATCH:
            raise ReportError(f"reports: must be a list of 1 to {MAX_BATCH} status documents")
        cleaned = [clean_report(raw) for raw in reports]  # all or none
        now = self.clock()
        with self._lock:
            for report in cleaned:  # oldest first: the last one of a kiosk is its latest
                self._latest[report["hardware_id"]] = _Latest(report, drop_point, now)
        return len(cleaned)

    def view(self) -> list[dict[str, Any]]:
        """Every kiosk: stale ones first, then those in trouble, then the rest (by id in each)."""
        now = self.clock()
        with self._lock:
            latest = list(self._latest.values())
        rows = []
        for entry in latest:
            age = max(0.0, now - entry.received_at)
            found = problems(entry.report)
            state = "stale" if age > self.stale_after_s else "trouble" if found else "ok"
            rows.append(
                {
                    "hardware_id": entry.report["hardware_id"],
                    "drop_point": entry.drop_point,
                    "state": state,
                    "problems": found,
                    "last_report_age_s": round(age, 1),
                    "report": entry.report,
                }
            )
        order = {"stale": 0, "trouble": 1, "ok": 2}
        return sorted(rows, key=lambda row: (order[row["state"]], row["hardware_id"]))

    def page(self) -> str:
        """The plain HTML fleet page."""
        rows = []
        for row in self.view():
            report = row["report"]
            cells = [
                row["state"],
                row["hardware_id"],
                row["drop_point"],
                f"{row['last_report_age_s']:.0f} s ago",
                "; ".join(row["problems"]) or "-",
                str(report.get("offline_codes_left", "-")),
                str(report.get("journal_pending", "-")),
                f"{report.get('version', '?')} ({report.get('commit', '?')})",
            ]
            rows.append(
                f'<tr class="{row["state"]}">' + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>"
            )
        head = "".join(
            f"<th>{name}</th>"
            for name in ("State", "Kiosk", "Drop point", "Last report", "Problems", "Codes", "Pending", "Version")
        )
        return (
            "<!doctype html>\n<html lang=en><meta charset=utf-8><title>RE-ZIP fleet</title>"
            "<style>body{font:14px sans-serif}td,th{padding:2px 8px;text-align:left}"
            ".stale{background:#ddd}.trouble{background:#fdd}</style>"
            f"<h1>Fleet: {len(rows)} kiosks</h1><table><tr>{head}</tr>{''.join(rows)}</table>\n"
        )


def _finite(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value) and abs(value) < 1e15
    except OverflowError:  # an integer too large for a float
        return False


def _one_line(text: str, limit: int) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in text)[:limit]
