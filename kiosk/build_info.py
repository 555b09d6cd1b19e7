"""Which build of the kiosk this is: the Debian package's version and the git commit it was built
from. In a checkout both say so; ``make deb`` writes the packaged copy of this file with the real
values (packaging/build-deb), so ``kiosk --version``, the status document and the metrics' build
info can tell a fleet's kiosks apart by release."""

from __future__ import annotations

from kiosk import __version__

__all__ = ["PACKAGE_VERSION", "COMMIT", "describe", "as_dict"]

#: The Debian package version, or None when the kiosk runs from a checkout.
PACKAGE_VERSION: str | None = None
#: The commit the package was built from (short hash, "-dirty" when the tree had changes), or None.
COMMIT: str | None = None


def describe() -> str:
    """One line for ``kiosk --version``: the kiosk's version, the package's and the commit."""
    if PACKAGE_VERSION is None:
        return f"kiosk {__version__} (from a checkout, not a package)"
    return f"kiosk {__version__} (package {PACKAGE_VERSION}, commit {COMMIT or 'unknown'})"


def as_dict() -> dict[str, str | None]:
    """The same for the status document and the metrics' build info (labels version, package, commit)."""
    return {"version": __version__, "package": PACKAGE_VERSION, "commit": COMMIT}
