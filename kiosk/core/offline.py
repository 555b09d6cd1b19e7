"""Offline issuance decisions: which cached code a packaging gets, and whether the kiosk may issue
offline at all. Pure: the store hands in rows and the time; nothing here does I/O or reads a clock.

Selection follows RE-ZIP's pool rules: the packaging's own shop's ``private``/``private_public``
pools in the kiosk's country first, then other shops' ``public``/``private_public`` pools; codes
that have expired or expire within the margin are skipped; the soonest-expiring code goes first
(codes without expiry last).

Limits follow the offline modes of payment terminals: a maximum number and a maximum value per
currency of offline issuances the backend has not taken yet (not forwarded: an empty or partial
answer resets nothing, and no clock stamp decides what counts), a maximum time since the backend
was last heard from, and no offline issuance while the clock cannot be trusted (earlier than the
newest time the backend signed, or than the kiosk's own journal written since, or jumped away
from the monotonic clock since the last contact). A kiosk that never heard its backend issues
nothing offline ("never_synced").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = ["CachedCode", "OfflineLimits", "OfflineState", "choose_code", "refusal"]

_OWN = ("private", "private_public")
_SHARED = ("public", "private_public")
#: How far the wall clock may disagree with the trusted estimate before it is not believed.
CLOCK_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class CachedCode:
    code: str
    shop_id: str
    visibility: str
    countries: tuple[str, ...]
    type: str
    value: int
    unit: str
    expires_at: datetime | None


@dataclass(frozen=True)
class OfflineLimits:
    max_issuances: int = 100
    #: Minor units per currency; a currency not listed has no value limit.
    max_value: Mapping[str, int] = field(default_factory=dict)
    max_offline_age: timedelta = timedelta(days=3)
    expiry_margin: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class OfflineState:
    """What the store knows at the moment of a claim."""

    unforwarded: int
    unforwarded_value: Mapping[str, int]
    last_contact: datetime | None
    #: The newest trustworthy time: signed by the backend, or of the kiosk's own last journal row.
    clock_floor: datetime | None
    #: Wall time expected now from the monotonic clock since the last contact (None after a restart).
    expected_now: datetime | None


def choose_code(
    codes: Iterable[CachedCode], *, packaging_shop: str | None, country: str, now: datetime, margin: timedelta
) -> CachedCode | None:
    """The code this packaging gets offline, or None if no cached code may serve it."""
    usable = [c for c in codes if country in c.countries and (c.expires_at is None or c.expires_at > now + margin)]
    own = [c for c in usable if c.shop_id == packaging_shop and c.visibility in _OWN]
    shared = [c for c in usable if c.shop_id != packaging_shop and c.visibility in _SHARED]
    for group in (own, shared):
        if group:
            return min(group, key=lambda c: (c.expires_at is None, c.expires_at or now, c.code))
    return None


def refusal(state: OfflineState, limits: OfflineLimits, code: CachedCode | None, now: datetime) -> str | None:
    """Why the kiosk may not issue ``code`` offline now, or None if it may."""
    if state.clock_floor is not None and now < state.clock_floor - CLOCK_TOLERANCE:
        return "clock_untrusted"
    if state.expected_now is not None and abs(now - state.expected_now) > CLOCK_TOLERANCE:
        return "clock_untrusted"
    if state.last_contact is None:
        return "never_synced"  # nothing cached, and no limit could have been checked against anything
    if now - state.last_contact > limits.max_offline_age:
        return "offline_too_long"
    if state.unforwarded >= limits.max_issuances:
        return "count_limit"
    if code is not None and code.type == "amount" and code.unit in limits.max_value:
        spent = state.unforwarded_value.get(code.unit, 0)
        if spent + code.value > limits.max_value[code.unit]:
            return "value_limit"
    return None
