"""What every scan source does to a read before the flow sees it. Pure: time is an argument.

- Strip what readers add (``codes.strip_reader_noise``: whitespace, an AIM symbology identifier
  such as ``]Q1``), then a configured prefix and suffix (scanners can be set to add them).
- Drop anything longer than ``max_chars`` (by default the normaliser's own cap).
- Debounce: a code read again within ``debounce_s`` of its last sighting is the same presentation
  (a code held in front of a camera is seen in every frame), so it counts once; the window restarts
  with each sighting. A different code is taken at once.
- One filter is shared by every source, and sources read in threads of their own: ``accept`` holds
  a lock, so two sources delivering the same code at once still count it once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from kiosk.core.codes import MAX_INPUT_CHARS, strip_reader_noise

__all__ = ["ScanFilter"]


@dataclass
class ScanFilter:
    prefix: str = ""
    suffix: str = ""
    debounce_s: float = 3.0
    max_chars: int = MAX_INPUT_CHARS
    _last_seen: dict[str, float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def accept(self, text: str, now: float) -> str | None:
        """The cleaned code if it is a new presentation, else None."""
        if len(text) > self.max_chars:
            return None
        cleaned = strip_reader_noise(text)
        if self.prefix and cleaned.startswith(self.prefix):
            cleaned = cleaned[len(self.prefix) :]
        if self.suffix and cleaned.endswith(self.suffix):
            cleaned = cleaned[: -len(self.suffix)]
        cleaned = strip_reader_noise(cleaned)
        if not cleaned:
            return None
        with self._lock:
            self._forget(now)
            last = self._last_seen.get(cleaned)
            self._last_seen[cleaned] = now if last is None else max(now, last)
        if last is not None and abs(now - last) < self.debounce_s:
            return None
        return cleaned

    def _forget(self, now: float) -> None:
        """Keep memory bounded: only codes still inside their window are remembered."""
        if len(self._last_seen) > 64:
            self._last_seen = {c: t for c, t in self._last_seen.items() if now - t < self.debounce_s}
