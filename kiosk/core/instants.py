"""The one way instants are written down: UTC, milliseconds, ``Z`` (``2026-12-01T09:30:00.000Z``),
the form RE-ZIP's API uses, so journals, exports and the stand-ins all compare as text."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["iso_z"]


def iso_z(moment: datetime) -> str:
    """``moment`` (aware) in UTC to the millisecond, ending in ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
