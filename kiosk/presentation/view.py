"""One view model per screen state, shared by every renderer (the screen and the paper).

Renderers never format or translate anything themselves: they lay out the strings built here. Free
text from shops (conditions, name, description) passes through unchanged; fixed texts come from
``labels``.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.core.flow import NoticeKind, Screen, State
from kiosk.core.voucher import Voucher
from kiosk.presentation.format import format_discount, format_expiry

__all__ = ["VoucherView", "ScreenView", "build_voucher_view", "build_screen_view", "labels"]

_LABELS_EN = {
    "use_code": "Use code",
    "expiration_date": "Expiration date",
    "conditions": "Conditions",
    "about": "About",
    "scan_prompt": "Scan the code on your RE-ZIP packaging",
    "scan_hint": "Hold the code in front of the scanner",
    "issuing": "Finding your voucher…",
    "thank_you": "Thank you for returning your packaging!",
    "scan_qr": "Scan the QR code with your phone",
    "notice.invalid_code": "That is not a RE-ZIP code",
    "notice.already_returned": "This packaging has already been returned",
    "notice.none_available": "Thank you! No voucher is available right now",
    "notice.backend_trouble": "We cannot issue a voucher right now",
    "notice.invalid_code.hint": "Please scan the code printed on the RE-ZIP packaging.",
    "notice.already_returned.hint": "Each packaging earns one voucher.",
    "notice.none_available.hint": "Your return has been counted.",
    "notice.backend_trouble.hint": "Please try again in a moment.",
}


def labels(locale: str) -> dict[str, str]:
    """The fixed texts for a locale."""
    return dict(_LABELS_EN)


@dataclass(frozen=True)
class VoucherView:
    discount: str
    code: str
    link: str | None
    expires: str | None
    conditions: str
    shop_name: str | None
    shop_description: str | None
    logo_url: str | None
    #: What the QR encodes: the link, or the code when there is no link.
    qr: str
    labels: dict[str, str]


@dataclass(frozen=True)
class ScreenView:
    state: State
    title: str
    subtitle: str | None = None
    voucher: VoucherView | None = None
    notice: NoticeKind | None = None


def build_voucher_view(voucher: Voucher, locale: str, timezone: str) -> VoucherView:
    shop = voucher.shop
    return VoucherView(
        discount=format_discount(voucher, locale),
        code=voucher.code,
        link=voucher.link,
        expires=format_expiry(voucher.expires_at, locale, timezone),
        conditions=voucher.conditions,
        shop_name=shop.name if shop else None,
        shop_description=shop.description if shop else None,
        logo_url=shop.logo_url if shop else None,
        qr=voucher.qr_payload,
        labels=labels(locale),
    )


def build_screen_view(screen: Screen, locale: str, timezone: str) -> ScreenView:
    text = labels(locale)
    if screen.state is State.SHOWING_VOUCHER and screen.voucher is not None:
        return ScreenView(
            screen.state,
            text["thank_you"],
            text["scan_qr"],
            voucher=build_voucher_view(screen.voucher, locale, timezone),
        )
    if screen.state is State.NOTICE and screen.notice is not None:
        key = f"notice.{screen.notice.value}"
        return ScreenView(screen.state, text[key], text[key + ".hint"], notice=screen.notice)
    if screen.state is State.ISSUING:
        return ScreenView(screen.state, text["issuing"], screen.code)
    return ScreenView(State.IDLE, text["scan_prompt"], text["scan_hint"])
