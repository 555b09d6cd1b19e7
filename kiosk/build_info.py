"""Which build of the kiosk this is: the Debian package's version and the git commit it was built
from. In a checkout both say so; ``make deb`` writes the packaged copy of this file with the real
values (packaging/build-deb), so ``kiosk --version``, the status document and the metrics' build
info can tell a fleet's kiosks apart by release."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

from kiosk import __version__

__all__ = ["PACKAGE_VERSION", "COMMIT", "commit", "describe", "as_dict"]

#: The Debian package version, or None when the kiosk runs from a checkout.
PACKAGE_VERSION: str | None = None
#: The commit the package was built from (short hash, "-dirty" when the tree had changes), or None.
COMMIT: str | None = None


_REPO = Path(__file__).resolve().parents[1]


@cache
def commit() -> str:
    """The commit this kiosk runs: the package's (``COMMIT``), else ``KIOSK_COMMIT`` (set by an
    image build), else the checkout's HEAD, else "unknown". Asked once per process."""
    if COMMIT:
        return COMMIT
    if os.environ.get("KIOSK_COMMIT"):
        return os.environ["KIOSK_COMMIT"][:40]
    if not (_REPO / ".git").exists():
        return "unknown"
    try:
        done = subprocess.run(
            ["git", "-C", str(_REPO), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    head = done.stdout.strip()
    return head if done.returncode == 0 and head.isalnum() else "unknown"


def describe() -> str:
    """One line for ``kiosk --version``: the kiosk's version, the package's and the commit."""
    if PACKAGE_VERSION is None:
        return f"kiosk {__version__} (from a checkout, not a package; commit {commit()})"
    return f"kiosk {__version__} (package {PACKAGE_VERSION}, commit {commit()})"


def as_dict() -> dict[str, str | None]:
    """The same for the status document and the metrics' build info (labels version, package, commit)."""
    return {"version": __version__, "package": PACKAGE_VERSION, "commit": commit()}
