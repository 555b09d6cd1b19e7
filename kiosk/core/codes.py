"""Packaging-code normaliser: turns what a reader produced into a RE-ZIP code, or a reason why not.

Rules this module keeps:
- It is pure: text in, a decision out. No I/O, no clock.
- Only a string matching RE-ZIP's pattern ``^[0-9]{2}.{2}([0-9A-Z]{26}|[0-9]{2,5})$`` is accepted,
  because RE-ZIP answers repeated 4xx with 429 and would lock the kiosk out. We are a little stricter
  than the pattern: the two free prefix characters must be printable, non-space ASCII (a scanner
  never puts a control character there on purpose).
- Case is kept as read: a lower-case ULID is not a code RE-ZIP issued, so it is rejected, not guessed.
- A URL is unwrapped only when its host is one of ``url_hosts`` (RE-ZIP's own by default): a shop's
  or a stranger's QR that happens to end in a code-shaped segment is a foreign code, not a scan.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

__all__ = ["PackagingCode", "Rejection", "RejectReason", "normalise", "MAX_INPUT_CHARS", "REZIP_URL_HOSTS"]

#: Longer input is not even parsed: no RE-ZIP code or URL wrapping one comes near it.
MAX_INPUT_CHARS = 2048

_CODE = re.compile(r"[0-9]{2}[\x21-\x7e]{2}(?:[0-9A-Z]{26}|[0-9]{2,5})")
#: AIM symbology identifier: "]" + symbology letter + modifier character (ISO/IEC 15424).
_AIM_PREFIX = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
_NOISE = "\r\n\t \x00"
_URL_PARAMS = ("code", "c", "barcode")
#: RE-ZIP's own hosts; "*.host" stands for any subdomain of host.
REZIP_URL_HOSTS = ("re-zip.com", "*.re-zip.com")


class RejectReason(enum.Enum):
    """Why input is not a RE-ZIP code; the value is the key of the customer-facing message."""

    EMPTY = "empty"
    TOO_LONG = "too_long"
    UNREADABLE = "unreadable"
    NOT_REZIP = "not_rezip"


_MESSAGES = {
    RejectReason.EMPTY: "Nothing was read. Please scan the code again.",
    RejectReason.TOO_LONG: "That is not a RE-ZIP code: it is far too long.",
    RejectReason.UNREADABLE: "The code could not be read cleanly. Please scan it again.",
    RejectReason.NOT_REZIP: "That is not a RE-ZIP code. Please scan the code on the RE-ZIP packaging.",
}


@dataclass(frozen=True)
class PackagingCode:
    """A valid RE-ZIP packaging code: a 4-character prefix and an item or short serial."""

    value: str

    @property
    def prefix(self) -> str:
        """The first four characters, which name the packaging type and its owner."""
        return self.value[:4]

    @property
    def serial(self) -> str:
        """What follows the prefix: a 26-character ULID for one physical item, or a short number."""
        return self.value[4:]

    @property
    def is_item(self) -> bool:
        """True when the serial is a ULID, i.e. the code names one physical item."""
        return len(self.serial) == 26


@dataclass(frozen=True)
class Rejection:
    """Input that is not a RE-ZIP code, with a reason a customer can act on."""

    reason: RejectReason
    text: str

    @property
    def message(self) -> str:
        """The English message; presentation translates by ``reason.value``."""
        return _MESSAGES[self.reason]


def normalise(raw: str, *, url_hosts: Iterable[str] = REZIP_URL_HOSTS) -> PackagingCode | Rejection:
    """Strip scanner noise, unwrap a URL of one of ``url_hosts``, and accept the result only if it
    is a RE-ZIP code."""
    if len(raw) > MAX_INPUT_CHARS:
        return Rejection(RejectReason.TOO_LONG, raw[:64])
    text = _AIM_PREFIX.sub("", raw.strip(_NOISE), count=1).strip(_NOISE)
    if not text:
        return Rejection(RejectReason.EMPTY, "")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F or 0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        return Rejection(RejectReason.UNREADABLE, text)
    candidate = _unwrap_url(text, tuple(url_hosts)) if "://" in text else text
    if candidate is not None and _CODE.fullmatch(candidate):
        return PackagingCode(candidate)
    return Rejection(RejectReason.NOT_REZIP, text)


def _unwrap_url(text: str, url_hosts: tuple[str, ...]) -> str | None:
    """The code a URL of an allowed host carries: a ``code``/``c``/``barcode`` parameter, else the
    last path segment."""
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        return None
    if not parts.scheme or not host or not _host_allowed(host, url_hosts):
        return None
    params = parse_qs(parts.query, keep_blank_values=False)
    for name in _URL_PARAMS:
        values = params.get(name)
        if values:
            return values[0]
    segments = [segment for segment in parts.path.split("/") if segment]
    return segments[-1] if segments else None


def _host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    host = host.rstrip(".")
    return any(host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])) for pattern in allowed)
