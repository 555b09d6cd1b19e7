"""Where plain http is acceptable: only to this machine itself (a loopback host, as the stand-ins on
loopback use); every URL that crosses a network must be https. Pure."""

from __future__ import annotations

__all__ = ["LOOPBACK_HOSTS", "plain_http_allowed"]

#: The loopback IP literals and the one name that always means this machine.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def plain_http_allowed(hostname: str | None) -> bool:
    """True for a URL host (as ``urlsplit(...).hostname`` gives it) that names this machine."""
    return hostname in LOOPBACK_HOSTS
