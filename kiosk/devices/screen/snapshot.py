"""A PNG of one screen, taken of the kiosk page itself in headless Chromium (one layout, not two)."""

from __future__ import annotations

from kiosk.core.flow import Screen, State
from kiosk.core.voucher import Voucher
from kiosk.devices.screen.browser import BrowserError, HeadlessBrowser
from kiosk.devices.screen.web_screen import WebScreen
from kiosk.logos import LogoCache
from kiosk.presentation.view import build_screen_view

__all__ = ["render_voucher_png", "LOGO_WAIT_S", "PAINT_WAIT_S"]

#: A one-off picture may wait longer for the shop's logo than a customer would.
LOGO_WAIT_S = 2.0
#: ... and for a cold browser to load the page's fonts and paint (several renders may share the CPU).
PAINT_WAIT_S = 20.0


async def render_voucher_png(voucher: Voucher, locale: str, timezone: str, size: tuple[int, int]) -> bytes:
    """The voucher screen exactly as the kiosk page shows it, taken once the page has painted it."""
    logos = LogoCache(plain_loopback=True)  # a technician's one-off picture, on their own machine
    if voucher.shop and voucher.shop.logo_url:
        await logos.get(voucher.shop.logo_url, LOGO_WAIT_S)
    screen = WebScreen(port=0, logos=logos, ack_timeout_s=PAINT_WAIT_S)
    await screen.start()
    try:
        async with HeadlessBrowser(*size) as browser:
            await screen.attach_capture(browser)
            view = build_screen_view(Screen(State.SHOWING_VOUCHER, voucher=voucher), locale, timezone)
            seq = await screen.show(view)
            png = await screen.settled(seq)
            if png is None or screen.acknowledged < seq:
                raise BrowserError(f"the page did not paint the voucher within {PAINT_WAIT_S:g} s")
    finally:
        await screen.stop()
    return png
