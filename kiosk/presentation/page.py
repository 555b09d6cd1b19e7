"""The frames the kiosk page renders: one JSON document per screen, built from the view model."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kiosk.presentation.i18n import language_name
from kiosk.presentation.qr import qr_svg_data_uri
from kiosk.presentation.view import ScreenView

__all__ = ["build_frame"]


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
        "status": view.status,
        "labels": view.labels,
        "touch": touch,
        "offline": offline,
        "languages": _switch(locales) if touch else [],
        "voucher": None,
    }
    voucher = view.voucher
    if voucher is not None:
        shown = voucher.to_json()
        del shown["logo_url"]  # the page loads the logo from the kiosk's own cache, never from the shop
        frame["voucher"] = shown | {
            "logo": logo_src,
            "qr": None if voucher.plain else voucher.qr,
            "qr_svg": None if voucher.plain else qr_svg_data_uri(voucher.qr),
        }
    return frame


def _switch(locales: Iterable[str]) -> list[dict[str, str]]:
    """The language switch's buttons: a country named only where two locales share a language."""
    codes = list(locales)
    languages = [code.split("_")[0] for code in codes]
    return [
        {"locale": code, "name": language_name(code, alone=languages.count(language) == 1)}
        for code, language in zip(codes, languages, strict=True)
    ]
