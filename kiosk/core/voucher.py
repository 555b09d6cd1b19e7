"""The voucher model of RE-ZIP's seed documents, and the one validator every source goes through.

Vouchers arrive from the RE-ZIP backend, from shops' webhooks and (later) from cached pools; all of
them are untrusted. ``parse_voucher`` checks every field and either returns a ``Voucher`` or raises
``VoucherError`` naming the field, so a bad body becomes a typed failure at the edge that read it.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

from kiosk.core.currencies import ACTIVE as ACTIVE_CURRENCIES

__all__ = [
    "DiscountType",
    "Shop",
    "Voucher",
    "VoucherError",
    "parse_voucher",
    "parse_shop",
    "DEFAULT_LINK_SCHEMES",
]

#: Codes are shown large and printed as text, so they must be short and plain.
_CODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z._\-/+#=:]{0,63}")
_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*")
MAX_LINK_CHARS = 2048
MAX_TEXT_CHARS = 2000
MAX_VALUE = 10**9
DEFAULT_LINK_SCHEMES = frozenset({"https"})


class VoucherError(ValueError):
    """A voucher field is missing or wrong; ``field`` names it (dotted for nested fields)."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


class DiscountType(enum.Enum):
    AMOUNT = "amount"
    PERCENTAGE = "percentage"
    GIFT = "gift"


@dataclass(frozen=True)
class Shop:
    """The shop profile shown beside a voucher; every field may be missing."""

    name: str | None = None
    description: str | None = None
    logo_url: str | None = None
    website: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "description": self.description,
            "logo_url": self.logo_url,
            "website": self.website,
        }


@dataclass(frozen=True)
class Voucher:
    """One voucher as the seed documents define it, plus the shop it came from."""

    code: str
    type: DiscountType
    value: int
    unit: str
    conditions: str
    expires_at: datetime | None = None
    link: str | None = None
    shop: Shop | None = None
    #: Problems that did not make the voucher unusable (e.g. a link with a scheme we refuse).
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def qr_payload(self) -> str:
        """What the QR code carries: the redirect link when there is one, else the code."""
        return self.link or self.code

    def to_json(self) -> dict[str, Any]:
        """The seed document's fields, as the backend and the demo's result files use them."""
        doc: dict[str, Any] = {
            "code": self.code,
            "link": self.link,
            "type": self.type.value,
            "value": self.value,
            "unit": self.unit,
            "conditions": self.conditions,
            "expires_at": _format_instant(self.expires_at),
        }
        if self.shop is not None:
            doc["shop"] = self.shop.to_json()
        return doc


def parse_voucher(
    doc: Any,
    *,
    shop: Shop | None = None,
    link_schemes: Iterable[str] | None = DEFAULT_LINK_SCHEMES,
) -> Voucher:
    """Validate a seed-shaped voucher document; ``shop`` is used when the document carries none.

    ``link_schemes`` lists the schemes a link may use; None accepts any well-formed scheme (the
    backend stores what shops send; each kiosk applies its own allow-list).
    """
    if not isinstance(doc, Mapping):
        raise VoucherError("voucher", "expected a JSON object")
    code = _required_str(doc, "code")
    if not _CODE.fullmatch(code):
        raise VoucherError("code", "must be 1-64 letters, digits or . _ - / + # = :")
    try:
        discount = DiscountType(_required_str(doc, "type"))
    except ValueError:
        raise VoucherError("type", "must be amount, percentage or gift") from None
    value = doc.get("value")
    if not isinstance(value, int) or isinstance(value, bool):
        raise VoucherError("value", "must be an integer")
    if not 0 < value <= MAX_VALUE:
        raise VoucherError("value", f"must be between 1 and {MAX_VALUE}")
    unit = _required_str(doc, "unit")
    if discount is DiscountType.AMOUNT and unit not in ACTIVE_CURRENCIES:
        raise VoucherError("unit", "must be an ISO 4217 currency code in use (such as DKK or EUR) for an amount")
    if discount is DiscountType.PERCENTAGE:
        if unit != "%":
            raise VoucherError("unit", 'must be "%" for a percentage')
        if value > 100:
            raise VoucherError("value", "a percentage cannot exceed 100")
    if discount is DiscountType.GIFT and not unit.strip():
        raise VoucherError("unit", "must describe the gift")
    conditions = doc.get("conditions")
    if conditions is None:
        conditions = ""
    if not isinstance(conditions, str) or len(conditions) > MAX_TEXT_CHARS:
        raise VoucherError("conditions", f"must be text of at most {MAX_TEXT_CHARS} characters")
    expires_at = _parse_instant(doc.get("expires_at"), "expires_at")
    schemes = None if link_schemes is None else frozenset(link_schemes)
    link, warnings = _parse_link(doc.get("link"), schemes)
    if "shop" in doc and doc["shop"] is not None:
        shop = parse_shop(doc["shop"])
    return Voucher(
        code=code,
        type=discount,
        value=value,
        unit=unit,
        conditions=conditions,
        expires_at=expires_at,
        link=link,
        shop=shop,
        warnings=warnings,
    )


def parse_shop(doc: Any) -> Shop:
    """Validate a shop profile; all fields optional, all text."""
    if not isinstance(doc, Mapping):
        raise VoucherError("shop", "expected a JSON object")
    values: dict[str, str | None] = {}
    for name in ("name", "description", "logo_url", "website"):
        item = doc.get(name)
        if item is not None and (not isinstance(item, str) or len(item) > MAX_TEXT_CHARS):
            raise VoucherError(f"shop.{name}", f"must be text of at most {MAX_TEXT_CHARS} characters")
        values[name] = item or None
    return Shop(**values)


def _required_str(doc: Mapping[str, Any], name: str) -> str:
    item = doc.get(name)
    if not isinstance(item, str) or not item:
        raise VoucherError(name, "is required and must be text")
    if len(item) > MAX_TEXT_CHARS:
        raise VoucherError(name, f"must be at most {MAX_TEXT_CHARS} characters")
    return item


def _parse_instant(item: Any, name: str) -> datetime | None:
    """ISO 8601 with an offset; a time without one is read as UTC (what every RE-ZIP example uses)."""
    if item is None:
        return None
    if not isinstance(item, str):
        raise VoucherError(name, "must be an ISO 8601 timestamp or null")
    try:
        instant = datetime.fromisoformat(item)
    except ValueError:
        raise VoucherError(name, f"is not an ISO 8601 timestamp: {item[:40]!r}") from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=timezone.utc)
    return instant


def _format_instant(instant: datetime | None) -> str | None:
    if instant is None:
        return None
    utc = instant.astimezone(timezone.utc)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_link(item: Any, schemes: frozenset[str] | None) -> tuple[str | None, tuple[str, ...]]:
    """A link we refuse is dropped with a warning: the customer still gets the code."""
    if item is None or item == "":
        return None, ()
    if not isinstance(item, str):
        raise VoucherError("link", "must be text or null")
    if len(item) > MAX_LINK_CHARS or any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in item):
        return None, ("link dropped: too long or contains spaces or control characters",)
    scheme = item.split(":", 1)[0].lower() if ":" in item else ""
    if not _SCHEME.fullmatch(scheme) or (schemes is not None and scheme not in schemes):
        return None, (f"link dropped: scheme {scheme or '(none)'!r} is not allowed",)
    parts = urlsplit(item)
    if scheme == "https" and not parts.netloc:
        return None, ("link dropped: https link without a host",)
    return item, ()
