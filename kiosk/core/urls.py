"""Where plain http is acceptable: only to this machine itself (a loopback host, as the stand-ins on
loopback use); every URL that crosses a network must be https. Pure."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["LOOPBACK_HOSTS", "plain_http_allowed", "url_problem", "is_web_url"]

#: The loopback IP literals and the one name that always means this machine.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def plain_http_allowed(hostname: str | None) -> bool:
    """True for a URL host (as ``urlsplit(...).hostname`` gives it) that names this machine."""
    return hostname in LOOPBACK_HOSTS


def url_problem(url: object, *, max_chars: int = 2048) -> str | None:
    """Why ``url`` is not an https URL the kiosk may use (plain http only to this machine), as a
    reason to put after a field's name; None when it is one."""
    if not isinstance(url, str) or not url:
        return "is required, as an https URL"
    if len(url) > max_chars or any(ord(ch) <= 0x20 or ord(ch) >= 0x7F for ch in url):
        return f"is not a well-formed URL (ASCII without spaces, at most {max_chars} characters)"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        return "is not a well-formed URL"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an https URL with a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password"
    if parts.scheme == "http" and not plain_http_allowed(parts.hostname):
        return "must be https (plain http only to a loopback host such as 127.0.0.1)"
    return None


def is_web_url(text: str, *, max_chars: int = 2000) -> bool:
    """What the kiosk may fetch (a shop's logo) or link to (its website): see ``url_problem``."""
    return url_problem(text, max_chars=max_chars) is None
