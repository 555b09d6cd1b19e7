"""The frames the kiosk page renders: one JSON document per screen, built from the view model."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterable

import segno

from kiosk.presentation.i18n import language_name
from kiosk.presentation.view import ScreenView

__all__ = ["build_frame", "qr_svg_data_uri"]


@lru_cache(maxsize=64)
def qr_svg_data_uri(payload: str) -> str:
    """The QR as an SVG data URI (error correction M, four-module quiet zone): sharp at any size.
    Cached: the same voucher is drawn again for printer notices and language changes."""
    qr = segno.make_qr(payload, error="m", boost_error=False)
    return qr.svg_data_uri(scale=1, border=4, dark="#000", light="#fff", xmldecl=False, svgns=True)


def build_frame(
    view: ScreenView,
    *,
    seq: int,
    touch: bool = False,
    locales: Iterable[str] = (),
    logo_src: str | None = None,
    offline: bool = False,
) -> dict[str, Any]:
    """The document the page receives; every text in it is final (translated and formatted)."""
    frame: dict[str, Any] = {
        "seq": seq,
        "state": view.state.value,
        "notice": view.notice,
        "locale": view.locale,
        "lang": view.locale.split("_")[0],
        "title": view.title,
        "subtitle": view.subtitle,
        "labels": view.labels,
        "touch": touch,
        "offline": offline,
        "languages": [{"locale": code, "name": language_name(code)} for code in locales] if touch else [],
        "voucher": None,
    }
    voucher = view.voucher
    if voucher is not None:
        frame["voucher"] = {
            "discount": voucher.discount,
            "code": voucher.code,
            "link": voucher.link,
            "expires": voucher.expires,
            "expires_line": voucher.expires_line,
            "conditions": voucher.conditions,
            "shop_name": voucher.shop_name,
            "shop_description": voucher.shop_description,
            "logo": logo_src,
            "qr": voucher.qr,
            "qr_svg": qr_svg_data_uri(voucher.qr),
            "labels": voucher.labels,
        }
    return frame
