"""What every HTTP client of the project does the same way with what a server answers: verified
TLS, answers read to a bound, JSON that may be anything, and ``Retry-After`` in any spelling. The
kiosk's RE-ZIP client, the shop's Voucherify client and the stand-in backend's webhook calls share
these, so a rule learnt the hard way (a body nested past the parser, a "²" that ``isdigit`` likes)
is learnt once.
"""

from __future__ import annotations

import json
import re
import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import certifi
import httpx

__all__ = [
    "MAX_BODY_BYTES",
    "RETRY_AFTER_CAP_S",
    "BodyTooLarge",
    "tls_context",
    "read_limited",
    "json_or_none",
    "retry_after_s",
]

#: An API answer is a few kilobytes; anything near this is not the answer asked for.
MAX_BODY_BYTES = 64 * 1024
_DELTA_SECONDS = re.compile(r"[0-9]{1,10}")


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verified TLS 1.2 or newer, trusting the public CAs plus ``ca_file`` when given."""
    context = ssl.create_default_context(cafile=certifi.where())
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


class BodyTooLarge(Exception):
    """An answer longer than the bound."""


async def read_limited(response: httpx.Response, limit: int = MAX_BODY_BYTES) -> bytes:
    """Read at most ``limit`` bytes: an endless or huge body must not stall the caller."""
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge()
    chunks = bytearray()
    async for chunk in response.aiter_bytes():
        chunks += chunk
        if len(chunks) > limit:
            raise BodyTooLarge()
    return bytes(chunks)


def json_or_none(raw: bytes) -> Any:
    """The body as JSON, or None when it is not (nested deeper than the parser goes included)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


#: The longest a ``Retry-After`` is obeyed for: an hour, whatever a server asks.
RETRY_AFTER_CAP_S = 3600.0


def retry_after_s(value: str | None, *, default_s: float = 30.0, cap_s: float = RETRY_AFTER_CAP_S) -> float:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); ``default_s`` for
    anything else."""
    if not value:
        return default_s
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):  # ASCII digits only: "²".isdigit() is true, float("²") fails
        return min(float(value), cap_s)
    try:
        when = parsedate_to_datetime(value)
    except Exception:  # the standard library's date parser fails in several ways on odd input
        return default_s
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - datetime.now(UTC)).total_seconds()), cap_s)
