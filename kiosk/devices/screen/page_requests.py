"""What the kiosk page's server accepts, as rules on the request's text: which Host it answers
(no DNS rebinding), which Origin may call it, and how the page's two small JSON bodies are read.

Rules this module keeps:
- It is pure: header values and body bytes in, a value or a ``Refused`` out. No I/O, no clock.
- A refusal carries an HTTP status and a fixed one-line reason; untrusted text never goes into the
  reason, so a reason is safe to log and to send back.
- Numbers from a body are taken only as plain JSON integers (not floats, not booleans, not NaN) and
  only within the range the caller allows.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from typing import Any

__all__ = [
    "Refused",
    "MAX_BODY_BYTES",
    "page_hosts",
    "check_host",
    "check_origin",
    "check_json_type",
    "check_body_size",
    "read_json_object",
    "frame_number",
    "locale_choice",
]

#: The page posts ``{"seq": 123}`` and ``{"locale": "da_DK"}``; nothing it sends comes near this.
MAX_BODY_BYTES = 1024
#: Always answered besides the listen address: the names a browser on the kiosk itself uses.
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


class Refused(Exception):
    """A request the page server answers with ``status`` and the one-line ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _authority_host(host: str) -> str:
    """An address as it stands in a Host header: an IPv6 address in brackets, names in lower case."""
    host = host.strip("[]").lower()
    return f"[{host}]" if ":" in host else host


def page_hosts(port: int, hosts: Iterable[str]) -> frozenset[str]:
    """The Host values the page answers: each of ``hosts`` (the listen address, and the local address
    a connection arrived on, an IP literal) and the loopback names, with the page's ``port``; on port
    80 also without it, as browsers leave the default port out."""
    names = {_authority_host(host) for host in (*hosts, *_LOOPBACK_NAMES) if host}
    allowed = {f"{name}:{port}" for name in names}
    if port == 80:
        allowed |= names
    return frozenset(allowed)


def check_host(values: list[str], allowed: Collection[str]) -> str:
    """The request's one Host header, lower-cased, if it names this page; a page reached under any
    other name (a rebound DNS name, a proxy's) is refused with 421 Misdirected Request."""
    if len(values) != 1 or values[0].lower() not in allowed:
        raise Refused(421, "Host: this page answers only to its own address")
    return values[0].lower()


def check_origin(values: list[str], host: str) -> None:
    """A request from another site's page carries that site's Origin: refused (403). Browsers send no
    Origin on the page's own GETs, and its own POSTs carry ``http://`` + the Host it reached."""
    if values and (len(values) != 1 or values[0].lower() != f"http://{host}"):
        raise Refused(403, "Origin: only the kiosk page itself may call this")


def check_json_type(values: list[str]) -> None:
    """Only ``application/json`` (UTF-8) is read: a form or ``text/plain`` post, which another site's
    page could send without asking first, is refused with 415."""
    if len(values) == 1:
        media_type, *parameters = (part.strip().lower() for part in values[0].split(";"))
        charsets = [p.partition("=")[2].strip('"') for p in parameters if p.partition("=")[0].strip() == "charset"]
        if media_type == "application/json" and all(charset == "utf-8" for charset in charsets):
            return
    raise Refused(415, "Content-Type: must be application/json")


def check_body_size(declared: int | None) -> None:
    """A body declared larger than ``MAX_BODY_BYTES`` is refused (413) before a byte of it is read."""
    if declared is not None and declared > MAX_BODY_BYTES:
        raise Refused(413, f"body: larger than {MAX_BODY_BYTES} bytes")


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def read_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object: strict JSON (no NaN or Infinity) in UTF-8, else refused (400)."""
    if len(body) > MAX_BODY_BYTES:
        raise Refused(413, f"body: larger than {MAX_BODY_BYTES} bytes")
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise Refused(400, "body: not UTF-8") from None
    except RecursionError:
        raise Refused(400, "body: nested too deeply") from None
    except ValueError:
        raise Refused(400, "body: not JSON") from None
    if not isinstance(document, dict):
        raise Refused(400, "body: must be a JSON object")
    return document


def frame_number(document: dict[str, Any], newest: int) -> int:
    """``seq``: a frame the kiosk has sent, so 1 to ``newest``; a float, a boolean, a negative or a
    number from the future never moves the acknowledgement forward."""
    seq = document.get("seq")
    if type(seq) is not int:
        raise Refused(400, "seq: a frame number (a whole number) is required")
    if not 1 <= seq <= newest:
        raise Refused(400, "seq: not a frame this kiosk has sent")
    return seq


def locale_choice(document: dict[str, Any], locales: Collection[str]) -> str:
    """``locale``: one of this kiosk's languages."""
    locale = document.get("locale")
    if type(locale) is not str or locale not in locales:
        raise Refused(400, "locale: not one of this kiosk's languages")
    return locale
