"""What an issuance attempt can end in, as the flow sees it. Plain data, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kiosk.core.voucher import Voucher

__all__ = [
    "Issued",
    "AlreadyReturned",
    "NoneAvailable",
    "Refused",
    "Unavailable",
    "OfflineLimited",
    "IssuanceOutcome",
    "Source",
]

Source = Literal["online", "offline"]


@dataclass(frozen=True)
class Issued:
    """A voucher is the customer's; it must be shown (and printed)."""

    voucher: Voucher
    source: Source
    #: The journal's idempotency key for this issuance, when it was journalled.
    key: str | None = None


@dataclass(frozen=True)
class AlreadyReturned:
    """This packaging item has earned its reward before."""

    message: str


@dataclass(frozen=True)
class NoneAvailable:
    """The return counted, but no pool had a voucher for this packaging here."""

    message: str


@dataclass(frozen=True)
class Refused:
    """The backend does not accept this code (e.g. unknown packaging)."""

    message: str


@dataclass(frozen=True)
class Unavailable:
    """No answer we can use: network, server, rate limit, credentials or a malformed body."""

    reason: str
    #: The idempotency key of the scan request that was sent and given up on, if one was: the
    #: backend may have recorded a voucher for it, which an offline issuance then reconciles.
    attempt_key: str | None = None


@dataclass(frozen=True)
class OfflineLimited:
    """The backend is away and an offline limit (count, value, time offline, untrusted clock) is hit."""

    reason: str


IssuanceOutcome = Issued | AlreadyReturned | NoneAvailable | Refused | Unavailable | OfflineLimited
