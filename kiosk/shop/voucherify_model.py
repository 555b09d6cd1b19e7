"""Voucherify's documents as the shop side reads them: vouchers, campaigns, errors. Pure.

Each ``parse_*`` function takes a decoded JSON document from Voucherify and returns a frozen
dataclass, or raises ``AnswerError`` saying which field is wrong. The reading is tolerant where the
official spec and Voucherify's own examples disagree (a field the spec calls a string that the
examples set to null is read as None) and strict where the shop side depends on a value (a code must
be text, an amount a finite number). Every document keeps its ``raw`` form, so a caller that needs a
field not modelled here still has it. Free text keeps only what ``kiosk.core.text.clean_text``
allows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kiosk.core.text import clean_text

__all__ = [
    "AnswerError",
    "ErrorDetail",
    "Discount",
    "Gift",
    "RedemptionQuota",
    "CodeConfig",
    "VoucherifyVoucher",
    "CampaignVoucher",
    "Campaign",
    "parse_error",
    "parse_voucher_doc",
    "parse_campaign_doc",
    "VALIDITY_FIELDS",
]

#: Fields that limit when in a week or day a code may be used (RE-ZIP has no way to show them).
VALIDITY_FIELDS = ("validity_timeframe", "validity_day_of_week", "validity_hours")
#: Error keys are short snake_case identifiers; anything else is not one (and is not echoed).
_KEY = re.compile(r"[a-z0-9_]{1,64}")
_MAX_TEXT = 2000


class AnswerError(ValueError):
    """A Voucherify document lacks a field the shop side needs, or holds one of the wrong kind."""


@dataclass(frozen=True)
class ErrorDetail:
    """Voucherify's error object ``{code, key, message, details, request_id, ...}``.

    ``message`` and ``details`` may quote a voucher code (``Cannot find voucher with id X``): they
    are for the caller to show or decide on, never for a log line (``log_safe`` is)."""

    code: int | None
    key: str | None
    message: str
    details: str | None = None
    request_id: str | None = None
    resource_id: str | None = None
    resource_type: str | None = None

    def log_safe(self) -> str:
        """The key and request id only: fixed identifiers that name no customer's code."""
        parts = [self.key or "(no key)"]
        if self.request_id and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", self.request_id):
            parts.append(f"request {self.request_id}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Discount:
    """A voucher's discount. Numbers are as Voucherify sends them: ``amount_off`` and
    ``fixed_amount`` in hundredths of the shop's currency, ``percent_off`` in percent, ``unit_off``
    a count of ``unit_type`` (a product or SKU id) named ``product_name``."""

    type: str
    effect: str | None = None
    percent_off: float | None = None
    amount_off: float | None = None
    unit_off: float | None = None
    unit_type: str | None = None
    product_name: str | None = None
    fixed_amount: float | None = None
    amount_limit: float | None = None
    aggregated_amount_limit: float | None = None
    #: The names of the ``*_formula`` fields set (a value computed at redemption time).
    formulas: tuple[str, ...] = ()
    is_dynamic: bool = False
    #: For a UNIT discount with several products (``effect: ADD_MANY_ITEMS``), one per product.
    units: tuple[Discount, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Gift:
    """A gift card's value, in hundredths of the shop's currency."""

    amount: float
    balance: float
    effect: str | None = None


@dataclass(frozen=True)
class RedemptionQuota:
    """How often a code may be redeemed (``quantity`` None: without limit) and has been."""

    quantity: int | None
    redeemed_quantity: int


@dataclass(frozen=True)
class CodeConfig:
    """How a campaign makes its codes: ``pattern`` with ``#`` for a character of ``charset``
    (else ``length`` of them), between ``prefix`` and ``postfix``."""

    pattern: str | None = None
    length: int | None = None
    charset: str | None = None
    prefix: str = ""
    postfix: str = ""


@dataclass(frozen=True)
class VoucherifyVoucher:
    """One Voucherify voucher (a discount code, a gift card or a loyalty card)."""

    code: str
    type: str
    id: str | None = None
    campaign: str | None = None
    campaign_id: str | None = None
    category: str | None = None
    discount: Discount | None = None
    gift: Gift | None = None
    start_date: datetime | None = None
    expiration_date: datetime | None = None
    active: bool | None = None
    redemption: RedemptionQuota = RedemptionQuota(None, 0)
    additional_info: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False)
    #: Which of ``VALIDITY_FIELDS`` are set.
    validity_limits: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class CampaignVoucher:
    """The template every code of a campaign is made from."""

    type: str
    discount: Discount | None = None
    gift: Gift | None = None
    redemption_quantity: int | None = None
    code_config: CodeConfig | None = None


@dataclass(frozen=True)
class Campaign:
    """A Voucherify campaign, as far as the shop side checks it when it starts."""

    id: str
    name: str
    campaign_type: str | None
    type: str | None
    voucher: CampaignVoucher | None
    active: bool | None = None
    start_date: datetime | None = None
    expiration_date: datetime | None = None
    validity_limits: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


def parse_error(doc: Any, status: int, fallback: str) -> ErrorDetail:
    """The error object of a non-2xx answer; ``fallback`` (the reason phrase) when the body is not
    one, as from a proxy in front of Voucherify."""
    if not isinstance(doc, Mapping):
        return ErrorDetail(code=status, key=None, message=fallback)
    code = doc.get("code")
    key = doc.get("key")
    return ErrorDetail(
        code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        key=key if isinstance(key, str) and _KEY.fullmatch(key) else None,
        message=_text(doc.get("message"), multiline=False) or fallback,
        details=_text(doc.get("details")),
        request_id=_text(doc.get("request_id"), multiline=False),
        resource_id=_text(doc.get("resource_id"), multiline=False),
        resource_type=_text(doc.get("resource_type"), multiline=False),
    )


def parse_voucher_doc(doc: Any) -> VoucherifyVoucher:
    """A voucher object (``GET /v1/vouchers/{code}``, a publication's or a redemption's voucher)."""
    doc = _object(doc, "voucher")
    code = doc.get("code")
    if not isinstance(code, str) or not code:
        raise AnswerError("voucher.code: is required and must be text")
    kind = _optional_str(doc, "type", "voucher") or "DISCOUNT_VOUCHER"
    redemption = _object(doc.get("redemption") or {}, "voucher.redemption")
    return VoucherifyVoucher(
        code=code,
        type=kind,
        id=_optional_str(doc, "id", "voucher"),
        campaign=_optional_str(doc, "campaign", "voucher"),
        campaign_id=_optional_str(doc, "campaign_id", "voucher"),
        category=_optional_str(doc, "category", "voucher"),
        discount=_discount(doc.get("discount"), "voucher.discount"),
        gift=_gift(doc.get("gift"), "voucher.gift"),
        start_date=_instant(doc.get("start_date"), "voucher.start_date"),
        expiration_date=_instant(doc.get("expiration_date"), "voucher.expiration_date"),
        active=_optional_bool(doc, "active", "voucher"),
        redemption=RedemptionQuota(
            quantity=_optional_count(redemption.get("quantity"), "voucher.redemption.quantity"),
            redeemed_quantity=_optional_count(
                redemption.get("redeemed_quantity"), "voucher.redemption.redeemed_quantity"
            )
            or 0,
        ),
        additional_info=_text(doc.get("additional_info")),
        metadata=doc.get("metadata") if isinstance(doc.get("metadata"), Mapping) else {},
        validity_limits=_validity_limits(doc),
        raw=doc,
    )


def parse_campaign_doc(doc: Any) -> Campaign:
    """A campaign object (``GET /v1/campaigns/{id or name}``)."""
    doc = _object(doc, "campaign")
    campaign_id, name = doc.get("id"), doc.get("name")
    if not isinstance(campaign_id, str) or not isinstance(name, str):
        raise AnswerError("campaign: id and name are required and must be text")
    template = doc.get("voucher")
    voucher = None
    if template is not None:
        template = _object(template, "campaign.voucher")
        config = template.get("code_config")
        redemption = _object(template.get("redemption") or {}, "campaign.voucher.redemption")
        voucher = CampaignVoucher(
            type=_optional_str(template, "type", "campaign.voucher") or "DISCOUNT_VOUCHER",
            discount=_discount(template.get("discount"), "campaign.voucher.discount"),
            gift=_gift(template.get("gift"), "campaign.voucher.gift"),
            redemption_quantity=_optional_count(redemption.get("quantity"), "campaign.voucher.redemption.quantity"),
            code_config=None if config is None else _code_config(config),
        )
    return Campaign(
        id=campaign_id,
        name=name,
        campaign_type=_optional_str(doc, "campaign_type", "campaign"),
        type=_optional_str(doc, "type", "campaign"),
        voucher=voucher,
        active=_optional_bool(doc, "active", "campaign"),
        start_date=_instant(doc.get("start_date"), "campaign.start_date"),
        expiration_date=_instant(doc.get("expiration_date"), "campaign.expiration_date"),
        validity_limits=_validity_limits(doc),
        raw=doc,
    )


# --- fields ---------------------------------------------------------------------------------------


def _object(doc: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise AnswerError(f"{name}: expected a JSON object")
    return doc


def _text(item: Any, *, multiline: bool = True) -> str | None:
    if not isinstance(item, str):
        return None
    return clean_text(item[:_MAX_TEXT], multiline=multiline).strip() or None


def _optional_str(doc: Mapping[str, Any], key: str, where: str) -> str | None:
    item = doc.get(key)
    if item is None:
        return None
    if not isinstance(item, str):
        raise AnswerError(f"{where}.{key}: must be text or null")
    return item


def _optional_bool(doc: Mapping[str, Any], key: str, where: str) -> bool | None:
    item = doc.get(key)
    if item is not None and not isinstance(item, bool):
        raise AnswerError(f"{where}.{key}: must be true, false or null")
    return item


def _number(item: Any, name: str) -> float | None:
    """A finite JSON number, kept as Voucherify sent it (an int stays an int)."""
    if item is None:
        return None
    if isinstance(item, bool) or not isinstance(item, (int, float)):
        raise AnswerError(f"{name}: must be a number or null")
    if isinstance(item, float) and not math.isfinite(item):
        raise AnswerError(f"{name}: must be a finite number")
    return item


def _optional_count(item: Any, name: str) -> int | None:
    number = _number(item, name)
    if number is None:
        return None
    if number < 0 or number != int(number):
        raise AnswerError(f"{name}: must be a whole number of at least 0")
    return int(number)


def _instant(item: Any, name: str) -> datetime | None:
    if item is None:
        return None
    if not isinstance(item, str) or len(item) > 64:
        raise AnswerError(f"{name}: must be an ISO 8601 timestamp or null")
    try:
        instant = datetime.fromisoformat(item)
    except ValueError:
        raise AnswerError(f"{name}: is not an ISO 8601 timestamp") from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    try:
        return instant.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        raise AnswerError(f"{name}: lies outside the years a voucher can have") from None


def _validity_limits(doc: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(name for name in VALIDITY_FIELDS if doc.get(name) not in (None, [], {}))


def _discount(item: Any, name: str) -> Discount | None:
    if item is None:
        return None
    doc = _object(item, name)
    kind = doc.get("type")
    if not isinstance(kind, str):
        raise AnswerError(f"{name}.type: is required and must be text")
    units = doc.get("units")
    if units is not None and not isinstance(units, list):
        raise AnswerError(f"{name}.units: must be a list")
    product = doc.get("product") if isinstance(doc.get("product"), Mapping) else {}
    sku = doc.get("sku") if isinstance(doc.get("sku"), Mapping) else {}
    return Discount(
        type=kind,
        effect=_optional_str(doc, "effect", name),
        percent_off=_number(doc.get("percent_off"), f"{name}.percent_off"),
        amount_off=_number(doc.get("amount_off"), f"{name}.amount_off"),
        unit_off=_number(doc.get("unit_off"), f"{name}.unit_off"),
        unit_type=_optional_str(doc, "unit_type", name),
        product_name=_text(product.get("name"), multiline=False) or _text(sku.get("sku"), multiline=False),
        fixed_amount=_number(doc.get("fixed_amount"), f"{name}.fixed_amount"),
        amount_limit=_number(doc.get("amount_limit"), f"{name}.amount_limit"),
        aggregated_amount_limit=_number(doc.get("aggregated_amount_limit"), f"{name}.aggregated_amount_limit"),
        formulas=tuple(sorted(key for key, value in doc.items() if key.endswith("_formula") and value)),
        is_dynamic=doc.get("is_dynamic") is True,
        units=tuple(
            _discount({"type": "UNIT", **_object(unit, f"{name}.units[{index}]")}, f"{name}.units[{index}]")
            for index, unit in enumerate(units or ())
        ),  # type: ignore[misc]
        raw=doc,
    )


def _gift(item: Any, name: str) -> Gift | None:
    if item is None:
        return None
    doc = _object(item, name)
    amount = _number(doc.get("amount"), f"{name}.amount")
    balance = _number(doc.get("balance"), f"{name}.balance")
    if amount is None:
        raise AnswerError(f"{name}.amount: is required")
    return Gift(
        amount=amount, balance=amount if balance is None else balance, effect=_optional_str(doc, "effect", name)
    )


def _code_config(item: Any) -> CodeConfig:
    doc = _object(item, "campaign.voucher.code_config")
    where = "campaign.voucher.code_config"
    length = _number(doc.get("length"), f"{where}.length")
    return CodeConfig(
        pattern=_optional_str(doc, "pattern", where),
        length=None if length is None else int(length),
        charset=_optional_str(doc, "charset", where),
        prefix=_optional_str(doc, "prefix", where) or "",
        postfix=_optional_str(doc, "postfix", where) or "",
    )
