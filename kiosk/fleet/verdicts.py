"""The technician's checks as pure verdicts: facts in, one line out. ``kiosk doctor`` gathers the
facts from the devices, the backend and the disk (``kiosk.fleet.doctor``); the running kiosk gathers
them from its snapshot (``snapshot_verdicts``), so the status document and the command agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kiosk.fleet.snapshot import KioskSnapshot

__all__ = [
    "Verdict",
    "printer_verdict",
    "board_verdict",
    "scanner_verdict",
    "offline_codes_verdict",
    "journal_verdict",
    "clock_verdict",
    "disk_verdict",
    "snapshot_verdicts",
    "MAX_CLOCK_OFFSET_S",
    "MIN_FREE_BYTES",
]

#: Beyond this the kiosk's clock disagrees with the backend's: expiry dates and offline age suffer.
MAX_CLOCK_OFFSET_S = 30.0
#: The data partition needs room for the journal, the logo cache and the screen's frames.
MIN_FREE_BYTES = 100 * 1024 * 1024
MIN_FREE_FRACTION = 0.05


@dataclass(frozen=True)
class Verdict:
    item: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.item}: {self.detail}"

    def to_json(self) -> dict[str, object]:
        return {"item": self.item, "ok": self.ok, "detail": self.detail}


def printer_verdict(state: str | None, paper_near_end: bool | None) -> Verdict:
    if state is None:
        return Verdict("printer", True, "none configured")
    if state != "ready":
        return Verdict("printer", False, state.replace("_", " "))
    return Verdict("printer", not paper_near_end, "ready, paper nearly used up" if paper_near_end else "ready")


def board_verdict(state: str | None) -> Verdict:
    if state is None:
        return Verdict("board", True, "none configured")
    return Verdict("board", state == "open", "connected" if state == "open" else state)


def scanner_verdict(name: str, state: str) -> Verdict:
    return Verdict(f"scanner {name}", state == "open", state)


def offline_codes_verdict(codes: Mapping[str, int], *, enabled: bool, watermark: int) -> Verdict:
    if not enabled:
        return Verdict("offline codes", True, "offline issuance is off")
    total = sum(codes.values())
    if not codes:
        return Verdict("offline codes", False, "none cached: no voucher while the backend is away")
    low = sorted(shop for shop, count in codes.items() if count < watermark)
    detail = f"{total} left for {len(codes)} shops"
    return Verdict("offline codes", not low, detail + (f"; below {watermark}: {', '.join(low)}" if low else ""))


def journal_verdict(pending: int, oldest_age_s: float | None, *, max_issuances: int, max_age_s: float) -> Verdict:
    if pending == 0:
        return Verdict("journal", True, "nothing waits to be forwarded")
    detail = f"{pending} offline issuances to forward, oldest {_age(oldest_age_s or 0.0)} old"
    trouble = pending >= max_issuances * 0.8 or (oldest_age_s or 0.0) >= max_age_s * 0.5
    return Verdict("journal", not trouble, detail)


def clock_verdict(offset_s: float | None) -> Verdict:
    if offset_s is None:
        return Verdict("clock", True, "no backend time to compare with yet")
    ok = abs(offset_s) <= MAX_CLOCK_OFFSET_S
    return Verdict("clock", ok, f"{offset_s:+.1f} s from the backend's" + ("" if ok else " (check time sync)"))


def disk_verdict(free_bytes: int, total_bytes: int) -> Verdict:
    fraction = free_bytes / total_bytes if total_bytes else 0.0
    ok = free_bytes >= MIN_FREE_BYTES and fraction >= MIN_FREE_FRACTION
    return Verdict("disk", ok, f"{free_bytes / 2**20:.0f} MiB free ({fraction:.0%})")


def snapshot_verdicts(
    snapshot: KioskSnapshot, *, offline_enabled: bool, watermark: int, max_issuances: int, max_age_s: float
) -> list[Verdict]:
    """The checks the running kiosk can answer from what it knows (no device is asked twice)."""
    return [
        printer_verdict(snapshot.printer_state, snapshot.paper_near_end),
        board_verdict(snapshot.board_state),
        *(scanner_verdict(name, state) for name, state in sorted(snapshot.scanners.items())),
        Verdict("backend", snapshot.online, "reachable" if snapshot.online else "unreachable"),
        offline_codes_verdict(snapshot.offline_codes, enabled=offline_enabled, watermark=watermark),
        journal_verdict(
            snapshot.journal_pending, snapshot.oldest_pending_age_s, max_issuances=max_issuances, max_age_s=max_age_s
        ),
        clock_verdict(snapshot.clock_offset_s),
    ]


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
