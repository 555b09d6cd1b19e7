"""One view model per screen state, shared by every renderer (the kiosk page and the paper).

Renderers never format or translate anything themselves: they lay out the strings built here. Free
text from shops (conditions, name, description) passes through unchanged; fixed texts come from the
gettext catalogs through ``labels``. Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kiosk.core.flow import Screen, State
from kiosk.core.voucher import Voucher
from kiosk.presentation.format import format_discount, format_expiry
from kiosk.presentation.i18n import labels

__all__ = ["VoucherView", "ScreenView", "build_voucher_view", "build_screen_view"]

#: Rejections with their own advice; the others get the general "scan the RE-ZIP code" hint.
_REASON_HINTS = {"empty": "notice.invalid_code.empty", "unreadable": "notice.invalid_code.unreadable"}


@dataclass(frozen=True)
class VoucherView:
    discount: str
    code: str
    #: "Use code SAVE50" in the locale's own phrasing and punctuation, for one-line renderings.
    use_code_line: str
    link: str | None
    expires: str | None
    #: "Expiration date: 15.3.2027" as the locale writes it (French puts a space before the colon).
    expires_line: str | None
    conditions: str
    shop_name: str | None
    shop_description: str | None
    logo_url: str | None
    #: What the QR encodes: the link, or the code when there is no link.
    qr: str
    labels: dict[str, str]
    #: The plain form: no QR code and no logo are drawn, and nothing here needed formatting that
    #: could fail (a voucher the rich screen could not show, or that failed to show before).
    plain: bool = False

    def to_json(self) -> dict[str, Any]:
        """Every field, every text final: ``kiosk voucher render --json`` prints this, and the page's
        frame carries it (with the logo as the page may load it, and the QR drawn)."""
        return {
            "discount": self.discount,
            "code": self.code,
            "use_code_line": self.use_code_line,
            "link": self.link,
            "expires": self.expires,
            "expires_line": self.expires_line,
            "conditions": self.conditions,
            "shop_name": self.shop_name,
            "shop_description": self.shop_description,
            "logo_url": self.logo_url,
            "qr": self.qr,
            "labels": dict(self.labels),
            "plain": self.plain,
        }


@dataclass(frozen=True)
class ScreenView:
    state: State
    locale: str
    title: str
    subtitle: str | None
    labels: dict[str, str]
    voucher: VoucherView | None = None
    notice: str | None = None
    #: A passing word the page announces politely (e.g. that a touch keeps the voucher up).
    status: str | None = None


def build_voucher_view(voucher: Voucher, locale: str, timezone: str, *, plain: bool = False) -> VoucherView:
    """The voucher in the locale; ``plain`` for the fallback form (see ``VoucherView.plain``)."""
    shop = voucher.shop
    text = labels(locale)
    if plain:
        discount, expires = _plain_discount(voucher, locale), _plain_expiry(voucher, locale, timezone)
    else:
        discount, expires = format_discount(voucher, locale), format_expiry(voucher.expires_at, locale, timezone)
    return VoucherView(
        discount=discount,
        code=voucher.code,
        use_code_line=text["use_code_line"].format(code=voucher.code),
        link=voucher.link,
        expires=expires,
        expires_line=text["expires_line"].format(date=expires) if expires else None,
        conditions=voucher.conditions,
        shop_name=shop.name if shop else None,
        shop_description=shop.description if shop else None,
        logo_url=None if plain or shop is None else shop.logo_url,
        qr=voucher.qr_payload,
        labels=text,
        plain=plain,
    )


def _plain_discount(voucher: Voucher, locale: str) -> str:
    """The locale's discount when it can be formatted at all, else value and unit as they came."""
    try:
        return format_discount(voucher, locale)
    except Exception:  # the plain form exists for what the rich one could not do
        return f"{voucher.value} {voucher.unit}"


def _plain_expiry(voucher: Voucher, locale: str, timezone: str) -> str | None:
    try:
        return format_expiry(voucher.expires_at, locale, timezone)
    except Exception:
        return voucher.expires_at.date().isoformat() if voucher.expires_at else None


def build_screen_view(screen: Screen, locale: str, timezone: str) -> ScreenView:
    text = labels(locale)
    if screen.state is State.SHOWING_VOUCHER and screen.voucher is not None:
        voucher = build_voucher_view(screen.voucher, locale, timezone, plain=screen.plain)
        status = text["voucher.kept"] if screen.kept else None
        if screen.printer is not None:
            key = f"notice.printer_{screen.printer}"
            return ScreenView(
                screen.state,
                locale,
                text[key],
                text[key + ".hint"],
                text,
                voucher=voucher,
                notice=f"printer_{screen.printer}",
                status=status,
            )
        return ScreenView(
            screen.state, locale, text["thank_you"], text["scan_qr"], text, voucher=voucher, status=status
        )
    if screen.state is State.NOTICE and screen.notice is not None:
        key = f"notice.{screen.notice.value}"
        hint = _REASON_HINTS.get(screen.reason or "", key + ".hint")
        return ScreenView(screen.state, locale, text[key], text[hint], text, notice=screen.notice.value)
    if screen.state is State.AWAITING_DEPOSIT:
        return ScreenView(screen.state, locale, text["drop_prompt"], screen.code, text)
    if screen.state is State.ISSUING:
        return ScreenView(screen.state, locale, text["issuing"], screen.code, text)
    return ScreenView(State.IDLE, locale, text["scan_prompt"], text["scan_hint"], text)
