"""The kiosk's logging: one line per event, no storms, no secrets.

- A storm of identical lines (a broken device retried every second, a flood of bad requests) would
  fill a kiosk's disk and hide everything else: ``StormFilter`` lets the first of a kind through,
  counts its repeats for ``window_s``, and the next one after the window says how many were held.
- Tokens are registered with ``never_log`` as soon as they are read; the formatter replaces every
  occurrence in every line, tracebacks included, whatever logger wrote it and at whatever level.
- Voucher codes and links are single-use secrets too: code that must refer to one in a log line
  writes ``fingerprint(code)`` instead, which names the voucher without giving it away. The one line
  we do not write ourselves, httpx's ``HTTP Request: METHOD URL`` at info level, keeps only the URL's
  origin and a fingerprint of its path and query (the shop side's URLs carry codes:
  ``/v1/vouchers/{code}``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TextIO

from kiosk.fleet.journal import journal_handler_for

__all__ = ["StormFilter", "ScrubbingFormatter", "RequestUrlFilter", "configure_logging", "never_log", "fingerprint"]

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def never_log(secret: str) -> None:
    """From now on ``secret`` is replaced by ``[redacted]`` in every log line of this process."""
    if len(secret) >= 4:  # shorter strings would blank out ordinary words
        with _SECRETS_LOCK:
            _SECRETS.add(secret)


def fingerprint(secret: str) -> str:
    """A short stable name for a voucher code or link, for log lines and reports."""
    return "#" + hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:10]


class ScrubbingFormatter(logging.Formatter):
    """A formatter whose output never holds a registered secret."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        with _SECRETS_LOCK:
            secrets = sorted(_SECRETS, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return text


class RequestUrlFilter(logging.Filter):
    """httpx's request lines name the origin and a fingerprint of the path, never the path."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "httpx" and isinstance(record.args, tuple):
            record.args = tuple(_origin_only(arg) for arg in record.args)
        return True


def _origin_only(arg: object) -> object:
    raw_path = getattr(arg, "raw_path", None)  # an httpx.URL (duck-typed: no httpx import here)
    if not isinstance(raw_path, bytes) or not hasattr(arg, "scheme") or not hasattr(arg, "netloc"):
        return arg
    netloc = arg.netloc
    origin = f"{arg.scheme}://{netloc.decode('ascii', 'replace') if isinstance(netloc, bytes) else netloc}"
    return f"{origin}/… {fingerprint(raw_path.decode('ascii', 'replace'))}"


class StormFilter(logging.Filter):
    """Identical lines (same logger, level and text) are let through once per ``window_s``; the
    first one after a window that held repeats says how many there were."""

    def __init__(
        self, window_s: float = 60.0, *, clock: Callable[[], float] = time.monotonic, max_kinds: int = 1000
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self._clock = clock
        self._max_kinds = max_kinds
        #: kind -> [window start, repeats], the kind last seen longest ago first. A kind is its
        #: text's hash (as random per process as Python's), so a long line is not kept whole.
        self._seen: dict[tuple[str, int, int], list[float]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            kind = (record.name, record.levelno, hash(record.getMessage()))
        except Exception:  # a record whose arguments do not fit its message: let logging report it
            return True
        now = self._clock()
        with self._lock:
            entry = self._seen.get(kind)
            if entry is not None and now - entry[0] < self.window_s:
                entry[1] += 1
                self._seen[kind] = self._seen.pop(kind)  # a line that keeps coming stays held
                return False
            held = int(entry[1]) if entry is not None else 0
            if len(self._seen) >= self._max_kinds:
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.window_s}
                if len(self._seen) >= self._max_kinds // 2:
                    # A storm of different lines (each names its own code or client): the kinds
                    # seen longest ago are forgotten, so that memory stays bounded and the next
                    # pruning is max_kinds / 2 lines away. Before, every line past max_kinds
                    # walked them all.
                    self._seen = dict(list(self._seen.items())[-(self._max_kinds // 2) :])
            self._seen.pop(kind, None)
            self._seen[kind] = [now, 0]
        if held:
            record.msg = f"{record.getMessage()} (and {held} more like it in the {self.window_s:g} s before)"
            record.args = None
        return True


def configure_logging(level: int, stream: TextIO, *, window_s: float = 60.0) -> logging.Handler:
    """The process's one log handler: to ``stream``, or under systemd to the journal in its native
    protocol with fields (``kiosk.fleet.journal``), scrubbed and storm-proof."""
    handler: logging.Handler = journal_handler_for(stream) or logging.StreamHandler(stream)
    handler.setFormatter(ScrubbingFormatter(_FORMAT))
    handler.addFilter(RequestUrlFilter())
    handler.addFilter(StormFilter(window_s))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
