"""The voucher model of RE-ZIP's seed documents, and the one validator every source goes through.

Vouchers arrive from the RE-ZIP backend, from shops' webhooks and (later) from cached pools; all of
them are untrusted. ``parse_voucher`` checks every field and either returns a ``Voucher`` or raises
``VoucherError`` naming the field, so a bad body becomes a typed failure at the edge that read it.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from kiosk.core.currencies import ACTIVE as ACTIVE_CURRENCIES
from kiosk.core.instants import iso_z
from kiosk.core.text import clean_text
from kiosk.core.urls import is_web_url, plain_http_allowed

__all__ = [
    "DiscountType",
    "Shop",
    "Voucher",
    "VoucherError",
    "parse_voucher",
    "parse_shop",
    "parse_instant",
    "DEFAULT_LINK_SCHEMES",
    "LOOPBACK_HTTP",
]

#: Codes are shown large and printed as text, so they must be short and plain.
_CODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z._\-/+#=:]{0,63}")
_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*")
#: The longest link every renderer can draw as a QR code that a phone reads at arm's length: QR
#: version 17 at error correction M holds 367 bytes, which the 58 mm printer's raster (4 dots a
#: module on 384 dots) and the 80 mm printer's native QR (6 dots a module on 576) still fit.
MAX_LINK_BYTES = 350
#: What a link may not hold: spaces, C0 and C1 controls, DEL, lone surrogates.
_LINK_UNSAFE = re.compile("[\x00-\x20\x7f-\x9f\ud800-\udfff]")
MAX_TEXT_CHARS = 2000
#: A gift's unit is shown as the headline ("1 Tote bag"), a shop name beside the logo.
MAX_LINE_CHARS = 120
MAX_VALUE = 10**9
#: Expiries are believable between these years; anything else is a broken or hostile field.
_EARLIEST_YEAR, _LATEST_YEAR = 2000, 2199
#: With the time known, an expiry further ahead than this is not a voucher anyone meant.
MAX_EXPIRY_AHEAD = timedelta(days=3653)
DEFAULT_LINK_SCHEMES = frozenset({"https"})
#: In an allow-list: plain http links are allowed when they point at this machine itself (a kiosk
#: whose backend is on loopback: the demo and the tests, where no TLS runs).
LOOPBACK_HTTP = "http+loopback"


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
            "expires_at": None if self.expires_at is None else iso_z(self.expires_at),
        }
        if self.shop is not None:
            doc["shop"] = self.shop.to_json()
        return doc


def parse_voucher(
    doc: Any,
    *,
    shop: Shop | None = None,
    link_schemes: Iterable[str] | None = DEFAULT_LINK_SCHEMES,
    now: datetime | None = None,
) -> Voucher:
    """Validate a seed-shaped voucher document; ``shop`` is used when the document carries none.

    ``link_schemes`` lists the schemes a link may use; None accepts any well-formed scheme (the
    backend stores what shops send; each kiosk applies its own allow-list). With ``now``, a voucher
    that has expired, or whose expiry lies beyond ``MAX_EXPIRY_AHEAD``, is refused. Fields that do
    not make the voucher unusable (a refused link, a bad shop field) are dropped with a warning.
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
    if discount is DiscountType.GIFT:
        unit = clean_text(unit, multiline=False).strip()
        if not unit or len(unit) > MAX_LINE_CHARS:
            raise VoucherError("unit", f"must describe the gift in at most {MAX_LINE_CHARS} characters")
    conditions = doc.get("conditions")
    if conditions is None:
        conditions = ""
    if not isinstance(conditions, str) or len(conditions) > MAX_TEXT_CHARS:
        raise VoucherError("conditions", f"must be text of at most {MAX_TEXT_CHARS} characters")
    expires_at = parse_instant(doc.get("expires_at"), "expires_at", now)
    schemes = None if link_schemes is None else frozenset(link_schemes)
    link, warnings = _parse_link(doc.get("link"), schemes)
    if "shop" in doc and doc["shop"] is not None:
        checked, shop_warnings = _checked_shop(doc["shop"])
        shop, warnings = checked or shop, warnings + shop_warnings
    return Voucher(
        code=code,
        type=discount,
        value=value,
        unit=unit,
        conditions=clean_text(conditions).strip(),
        expires_at=expires_at,
        link=link,
        shop=shop,
        warnings=warnings,
    )


def parse_shop(doc: Any) -> Shop | None:
    """A shop profile as far as it is usable: every field optional; a field that is not sensible
    text, or a URL that is not an https URL (http only on loopback), is left out."""
    return _checked_shop(doc)[0]


def _checked_shop(doc: Any) -> tuple[Shop | None, tuple[str, ...]]:
    if not isinstance(doc, Mapping):
        return None, ("shop dropped: not a JSON object",)
    values: dict[str, str | None] = {}
    warnings: list[str] = []
    for name, limit, multiline in (("name", MAX_LINE_CHARS, False), ("description", MAX_TEXT_CHARS, True)):
        item = doc.get(name)
        text = clean_text(item, multiline=multiline).strip() if isinstance(item, str) else None
        if item is not None and (text is None or len(text) > limit):
            warnings.append(f"shop.{name} dropped: not text of at most {limit} characters")
            text = None
        values[name] = text or None
    for name in ("logo_url", "website"):
        item = doc.get(name)
        url = item if isinstance(item, str) and is_web_url(item, max_chars=MAX_TEXT_CHARS) else None
        if item not in (None, "") and url is None:
            warnings.append(f"shop.{name} dropped: not an https URL")
        values[name] = url
    return Shop(**values), tuple(warnings)


def _required_str(doc: Mapping[str, Any], name: str) -> str:
    item = doc.get(name)
    if not isinstance(item, str) or not item:
        raise VoucherError(name, "is required and must be text")
    if len(item) > MAX_TEXT_CHARS:
        raise VoucherError(name, f"must be at most {MAX_TEXT_CHARS} characters")
    return item


def parse_instant(item: Any, name: str, now: datetime | None = None) -> datetime | None:
    """An expiry: ISO 8601 with an offset, in UTC; a time without one is read as UTC (what every
    RE-ZIP example uses); null is None. ``VoucherError`` names ``name`` when it is not believable."""
    if item is None:
        return None
    if not isinstance(item, str) or len(item) > 64:
        raise VoucherError(name, "must be an ISO 8601 timestamp or null")
    try:
        instant = datetime.fromisoformat(item)
    except ValueError:
        raise VoucherError(name, f"is not an ISO 8601 timestamp: {clean_text(item[:40])!r}") from None
    # The year is checked before any conversion: year 1 or 9999 with an offset overflows on the way.
    if not _EARLIEST_YEAR <= instant.year <= _LATEST_YEAR:
        raise VoucherError(name, f"must lie between the years {_EARLIEST_YEAR} and {_LATEST_YEAR}")
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    instant = instant.astimezone(UTC)
    if now is not None:
        if instant <= now:
            raise VoucherError(name, "the voucher has expired")
        if instant > now + MAX_EXPIRY_AHEAD:
            raise VoucherError(name, f"lies more than {MAX_EXPIRY_AHEAD.days // 365} years ahead")
    return instant


def _parse_link(item: Any, schemes: frozenset[str] | None) -> tuple[str | None, tuple[str, ...]]:
    """A link we refuse is dropped with a warning: the customer still gets the code (and the QR
    then carries the code). A link must parse, use an allowed scheme and fit the QR code."""
    if item is None or item == "":
        return None, ()
    if not isinstance(item, str):
        raise VoucherError("link", "must be text or null")
    if len(item.encode("utf-8", "surrogatepass")) > MAX_LINK_BYTES:
        return None, (f"link dropped: longer than the {MAX_LINK_BYTES} bytes a QR code on the voucher holds",)
    if _LINK_UNSAFE.search(item):
        return None, ("link dropped: contains spaces or control characters",)
    scheme = item.split(":", 1)[0].lower() if ":" in item else ""
    try:
        parts = urlsplit(item)
        _ = parts.port  # raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        return None, ("link dropped: not a URL",)
    loopback_http = (
        scheme == "http" and schemes is not None and LOOPBACK_HTTP in schemes and plain_http_allowed(parts.hostname)
    )
    if not _SCHEME.fullmatch(scheme) or (schemes is not None and scheme not in schemes and not loopback_http):
        return None, (f"link dropped: scheme {scheme or '(none)'!r} is not allowed",)
    if scheme in ("https", "http") and not parts.hostname:
        return None, (f"link dropped: {scheme} link without a host",)
    if not item[len(scheme) + 1 :].strip("/"):
        return None, ("link dropped: nothing after the scheme",)
    return item, ()
