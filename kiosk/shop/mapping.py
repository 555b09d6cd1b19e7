"""A Voucherify voucher as a RE-ZIP voucher, exactly, or a reason why it cannot be one. Pure.

RE-ZIP shows a voucher as one of three things (the seed ``vouchers``): an amount in a currency, a
whole percentage, or a count of a named gift. The mapping:

- ``PERCENT``: ``percent_off`` → ``percentage``, unit ``%``. Whole numbers from 1 to 100 only:
  RE-ZIP's value is an integer, so 12.5 % is refused rather than shown as 12 % or 13 %.
- ``AMOUNT``: ``amount_off`` is in hundredths of the shop's currency whatever its minor unit (1000
  = 10.00); RE-ZIP's ``amount`` is in the currency's minor units (ISO 4217, ``minor_digits``). So
  2000 in DKK (2 digits) stays 2000; in JPY (0 digits) 100000 becomes 1000 (1000 yen), and 150
  (1.50 yen) is refused; in KWD (3 digits) 1050 becomes 10500 (10.500 dinar).
- ``UNIT``: ``unit_off`` of one product → ``gift``, the value the count, the unit the product's name
  (``product.name``, else the SKU's ``sku``). A product without a name, or several products
  (``ADD_MANY_ITEMS`` with more than one unit), is refused.
- Gift cards (``GIFT_VOUCHER``): the remaining ``balance`` → ``amount``, converted as ``AMOUNT``.
- ``expiration_date`` → ``expires_at``; none means no expiry line.
- ``conditions``: the caller's configured text, else the voucher's ``additional_info``, else none.
- ``link``: built by the caller (the shop's redeem URL); ``code``: the Voucherify code as it is.

What RE-ZIP cannot show is refused, never approximated: ``FIXED`` (the order costs a set price),
any ``*_formula`` or dynamic value (computed at redemption time), a cap on a percentage
(``amount_limit``, ``aggregated_amount_limit``), effects that multiply the discount per item
(``APPLY_TO_ITEMS`` and ``APPLY_TO_ITEMS_BY_QUANTITY`` for an amount), codes valid only at some
times of the week (``validity_timeframe``, ``validity_day_of_week``, ``validity_hours``), loyalty
cards, and codes that RE-ZIP's voucher model would not carry (``kiosk.core.voucher``). A service
checks its campaign with ``campaign_problem`` when it starts, so a campaign that cannot work is
refused then, with its reason, not at a customer's scan.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from kiosk.core.currencies import ACTIVE as ACTIVE_CURRENCIES
from kiosk.core.currencies import minor_digits
from kiosk.core.voucher import DEFAULT_LINK_SCHEMES, Voucher, parse_voucher
from kiosk.shop.voucherify_model import Campaign, CodeConfig, Discount, Gift, VoucherifyVoucher

__all__ = ["MappingError", "rezip_voucher", "campaign_problem"]

#: Effects that take the discount once from the order (or spread it over the order's items).
_PLAIN_EFFECTS = {
    "PERCENT": {None, "APPLY_TO_ORDER", "APPLY_TO_ITEMS"},
    "AMOUNT": {None, "APPLY_TO_ORDER", "APPLY_TO_ITEMS_PROPORTIONALLY", "APPLY_TO_ITEMS_PROPORTIONALLY_BY_QUANTITY"},
    "UNIT": {None, "ADD_MISSING_ITEMS", "ADD_NEW_ITEMS", "ADD_MANY_ITEMS"},
    "GIFT": {None, "APPLY_TO_ORDER", "APPLY_TO_ITEMS"},
}
#: What the characters of a RE-ZIP voucher code may be (``kiosk.core.voucher``'s code rule).
_CODE_CHARACTERS = re.compile(r"[0-9A-Za-z._\-/+#=:]*")
_MAX_CODE_CHARS = 64
_DEFAULT_CHARSET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


class MappingError(ValueError):
    """This Voucherify voucher (or campaign) has no exact RE-ZIP form; the message says why."""


def rezip_voucher(
    voucher: VoucherifyVoucher,
    *,
    currency: str,
    link: str | None = None,
    conditions: str | None = None,
    now: datetime | None = None,
    link_schemes: Iterable[str] | None = DEFAULT_LINK_SCHEMES,
) -> Voucher:
    """The RE-ZIP voucher for ``voucher`` in the shop's ``currency``; ``MappingError`` when it has
    none (see the module's rules). With ``now``, a code that is disabled, not yet valid or expired
    is refused too, so a customer is never handed one that does not work."""
    if voucher.active is False:
        raise MappingError("the code is disabled")
    if now is not None and voucher.start_date is not None and voucher.start_date > now:
        raise MappingError("the code is not valid yet (start_date lies ahead)")
    problem = _currency_problem(currency) or _validity_problem(voucher.validity_limits)
    if problem:
        raise MappingError(problem)
    kind, value, unit = _value(voucher.type, voucher.discount, voucher.gift, currency, use_balance=True)
    document = {
        "code": voucher.code,
        "link": link,
        "type": kind,
        "value": value,
        "unit": unit,
        "conditions": conditions if conditions is not None else (voucher.additional_info or ""),
        "expires_at": _iso(voucher.expiration_date),
    }
    try:
        return parse_voucher(document, link_schemes=link_schemes, now=now)
    except ValueError as exc:  # VoucherError: e.g. a code RE-ZIP cannot carry, an expired code
        raise MappingError(f"not a RE-ZIP voucher: {exc}") from None


def campaign_problem(campaign: Campaign, currency: str) -> str | None:
    """Why codes of ``campaign`` cannot become RE-ZIP vouchers in ``currency``, or None when they
    can: what a service says (and stops on) when it starts."""
    problem = _currency_problem(currency) or _validity_problem(campaign.validity_limits)
    if problem:
        return problem
    if campaign.active is False:
        return "the campaign is not active: it publishes no codes"
    template = campaign.voucher
    if template is None:
        return "the campaign has no voucher template (it is not a campaign of codes)"
    try:
        _value(template.type, template.discount, template.gift, currency, use_balance=False)
    except MappingError as exc:
        return str(exc)
    if template.code_config is not None:
        return _code_config_problem(template.code_config)
    return None


def _value(
    kind: str, discount: Discount | None, gift: Gift | None, currency: str, *, use_balance: bool
) -> tuple[str, int, str]:
    """``(type, value, unit)`` of the RE-ZIP voucher; a campaign's template has a gift card's
    starting amount, a code its remaining balance."""
    if kind == "DISCOUNT_VOUCHER":
        if discount is None:
            raise MappingError("discount: a discount code without a discount")
        return _discount_value(discount, currency)
    if kind == "GIFT_VOUCHER":
        if gift is None:
            raise MappingError("gift: a gift card without an amount")
        if gift.effect not in _PLAIN_EFFECTS["GIFT"]:
            raise MappingError(f"gift.effect: {gift.effect} is not a plain effect RE-ZIP can show")
        value = gift.balance if use_balance else gift.amount
        return "amount", _minor_units(value, currency, "gift.balance" if use_balance else "gift.amount"), currency
    if kind == "LOYALTY_CARD":
        raise MappingError("type: a loyalty card holds points, which RE-ZIP cannot show as a voucher")
    raise MappingError(f"type: {kind!r} is not a voucher type RE-ZIP knows")


def _discount_value(discount: Discount, currency: str) -> tuple[str, int, str]:
    if discount.formulas:
        raise MappingError(f"discount.{discount.formulas[0]}: a value computed at redemption time cannot be printed")
    if discount.is_dynamic:
        raise MappingError("discount.is_dynamic: a value computed at redemption time cannot be printed")
    plain = _PLAIN_EFFECTS.get(discount.type)
    if plain is None:
        if discount.type == "FIXED":
            raise MappingError("discount.type: FIXED sets the price of the order, which RE-ZIP cannot show")
        raise MappingError(f"discount.type: {discount.type!r} is not a discount RE-ZIP can show")
    if discount.effect not in plain:
        raise MappingError(
            f"discount.effect: {discount.effect} is not a plain effect RE-ZIP can show for {discount.type}"
        )
    if discount.type == "PERCENT":
        return "percentage", _whole_percent(discount), "%"
    if discount.type == "AMOUNT":
        return "amount", _minor_units(discount.amount_off, currency, "discount.amount_off"), currency
    return _unit_value(discount)


def _whole_percent(discount: Discount) -> int:
    for cap in ("amount_limit", "aggregated_amount_limit"):
        if getattr(discount, cap) is not None:
            raise MappingError(f"discount.{cap}: RE-ZIP shows a plain percentage and cannot show its cap")
    percent = discount.percent_off
    if percent is None:
        raise MappingError("discount.percent_off: is missing")
    if percent != int(percent):
        raise MappingError(f"discount.percent_off: {percent:g} % is not a whole percentage")
    if not 1 <= percent <= 100:
        raise MappingError("discount.percent_off: must lie between 1 and 100")
    return int(percent)


def _unit_value(discount: Discount) -> tuple[str, int, str]:
    unit = discount
    if discount.units or discount.effect == "ADD_MANY_ITEMS":
        if len(discount.units) != 1:
            raise MappingError("discount.units: several products in one code cannot be shown as one gift")
        unit = discount.units[0]
        if unit.effect not in _PLAIN_EFFECTS["UNIT"]:
            raise MappingError(f"discount.units[0].effect: {unit.effect} is not a plain effect RE-ZIP can show")
    if unit.formulas:
        raise MappingError(f"discount.{unit.formulas[0]}: a value computed at redemption time cannot be printed")
    count = unit.unit_off
    if count is None or count != int(count) or count < 1:
        raise MappingError("discount.unit_off: must be a whole number of items, at least 1")
    if not unit.product_name:
        raise MappingError("discount.product: the product has no name to show on the voucher")
    return "gift", int(count), unit.product_name


def _minor_units(hundredths: float | None, currency: str, name: str) -> int:
    """Voucherify's hundredths as the currency's minor units, exactly or not at all."""
    if hundredths is None:
        raise MappingError(f"{name}: is missing")
    if hundredths != int(hundredths):
        raise MappingError(f"{name}: {hundredths:g} is not a whole number of hundredths")
    digits = minor_digits(currency)
    whole = int(hundredths)
    if digits >= 2:
        value = whole * 10 ** (digits - 2)
    else:
        step = 10 ** (2 - digits)
        if whole % step:
            raise MappingError(f"{name}: {whole / 100:g} {currency} is finer than {currency}'s smallest unit")
        value = whole // step
    if value < 1:
        raise MappingError(f"{name}: must be more than nothing")
    return value


def _currency_problem(currency: str) -> str | None:
    if currency not in ACTIVE_CURRENCIES:
        return f"currency: {currency!r} is not an ISO 4217 currency in use"
    return None


def _validity_problem(limits: tuple[str, ...]) -> str | None:
    if limits:
        return f"{limits[0]}: RE-ZIP cannot show that a code is valid only at some times"
    return None


def _code_config_problem(config: CodeConfig) -> str | None:
    """Codes the pattern makes must be codes RE-ZIP carries: its characters, at most 64 of them,
    starting with a letter or digit."""
    charset = config.charset or _DEFAULT_CHARSET
    pattern = config.pattern if config.pattern else "#" * (config.length or 8)
    for name, text in (
        ("prefix", config.prefix),
        ("postfix", config.postfix),
        ("charset", charset),
        ("pattern", pattern),
    ):
        if not _CODE_CHARACTERS.fullmatch(text):
            return f"code_config.{name}: holds characters a RE-ZIP voucher code may not have (letters, digits, . _ - / + # = : only)"
    length = len(config.prefix) + len(pattern) + len(config.postfix)
    if length > _MAX_CODE_CHARS:
        return f"code_config: codes of {length} characters are longer than the {_MAX_CODE_CHARS} RE-ZIP allows"
    if config.prefix:
        starts = config.prefix[0]
    else:
        starts = charset if pattern[0] == "#" else pattern[0]
    if not all(ch.isascii() and ch.isalnum() for ch in starts):
        return "code_config: codes must start with a letter or digit"
    return None


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()
