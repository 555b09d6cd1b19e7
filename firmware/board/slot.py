# The drop-slot sensor: an IR light barrier whose output goes low while something blocks the beam.
# Pure debouncing (time is an argument), for MicroPython and CPython alike.

BLOCKED = "blocked"
CLEAR = "clear"
STUCK = "stuck"


class SlotDebouncer:
    """Levels in, events out. A new level counts once it has held for ``settle_ms`` (contact
    bounce and a flickering beam are ignored); an item is reported when the beam has been blocked
    and is clear again, so one packaging is one deposit however long it takes to fall. A beam
    blocked for ``stuck_ms`` is reported once as STUCK (a jam the technician should see)."""

    def __init__(self, settle_ms=15, stuck_ms=5000, blocked_level=0):
        self.settle_ms = settle_ms
        self.stuck_ms = stuck_ms
        self.blocked_level = blocked_level
        self.state = CLEAR
        self._candidate = None
        self._since = 0
        self._blocked_at = 0
        self._stuck_told = False

    def update(self, level, now_ms, ticks_diff=None):
        """The events this sample causes: a list of BLOCKED, CLEAR (= one deposit) or STUCK."""
        diff = ticks_diff or _plain_diff
        seen = BLOCKED if level == self.blocked_level else CLEAR
        events = []
        if seen == self.state:
            self._candidate = None
        elif self._candidate != seen:
            self._candidate, self._since = seen, now_ms
        if self._candidate is not None and diff(now_ms, self._since) >= self.settle_ms:
            self.state, self._candidate = seen, None
            events.append(seen)
            if seen == BLOCKED:
                self._blocked_at, self._stuck_told = self._since, False
        if self.state == BLOCKED and not self._stuck_told and diff(now_ms, self._blocked_at) >= self.stuck_ms:
            self._stuck_told = True
            events.append(STUCK)
        return events


def _plain_diff(a, b):
    return a - b
