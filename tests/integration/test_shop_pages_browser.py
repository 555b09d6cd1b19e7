"""The link pages in headless Chromium: served on loopback with their headers, asked for in the
browser's language, they show the catalog's text and the code as text, styled by the one inline
style their Content-Security-Policy allows (and unstyled when the policy does not allow it)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from kiosk.devices.screen.browser import HeadlessBrowser
from kiosk.presentation.i18n import labels
from kiosk.shop.pages import redeem_page

pytestmark = pytest.mark.integration

CODE = "<b>HS</b>-1234&amp;"


async def _serve_pages() -> tuple[web.AppRunner, str]:
    async def page(request: web.Request) -> web.Response:
        status, headers, body = redeem_page(
            request.query["outcome"],
            request.query.get("code", ""),  # type: ignore[arg-type]
            request.headers.get("Accept-Language"),
        )
        if "broken-policy" in request.query:  # the same page under a policy that does not name its style
            headers = headers | {"Content-Security-Policy": "default-src 'none'; style-src 'sha256-AAAA'"}
        return web.Response(status=status, headers=headers, body=body)

    app = web.Application()
    app.router.add_get("/redeem", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def _open(browser: HeadlessBrowser, url: str) -> dict:
    await browser.navigate(url)
    await browser.wait_for("document.readyState === 'complete' && document.querySelector('h1') !== null")
    return await browser.evaluate(
        "({lang: document.documentElement.lang, title: document.title,"
        " h1: document.querySelector('h1').innerText, hint: document.querySelector('main > p').innerText,"
        " code: document.querySelector('code') && document.querySelector('code').innerText,"
        " bold: document.querySelectorAll('b').length, scripts: document.scripts.length,"
        " width: getComputedStyle(document.querySelector('main')).maxWidth})"
    )


def test_the_pages_render_in_the_customers_language() -> None:
    async def scenario() -> list[dict]:
        runner, base = await _serve_pages()
        try:
            async with HeadlessBrowser(390, 700) as browser:
                await browser.call("Network.enable")
                shown = []
                for language, outcome in (
                    ("da-DK,da;q=0.9,en;q=0.5", "already_redeemed"),
                    ("de-CH,de;q=0.9", "expired"),
                ):
                    await browser.call("Network.setExtraHTTPHeaders", headers={"Accept-Language": language})
                    shown.append(
                        await _open(browser, f"{base}/redeem?outcome={outcome}&code=%3Cb%3EHS%3C/b%3E-1234%26amp;")
                    )
                shown.append(await _open(browser, f"{base}/redeem?outcome=expired&code=X&broken-policy=1"))
                return shown
        finally:
            await runner.cleanup()

    danish, german, unstyled = asyncio.run(scenario())
    assert danish["lang"] == "da-DK" and german["lang"] == "de-DE"
    for shown, locale, outcome in ((danish, "da_DK", "already_redeemed"), (german, "de_DE", "expired")):
        text = labels(locale)
        assert shown["h1"] == shown["title"] == text[f"redeem.{outcome}"]
        assert shown["hint"] == text[f"redeem.{outcome}.hint"]
        assert shown["code"] == CODE and shown["bold"] == 0 and shown["scripts"] == 0
        assert shown["width"] == "544px"  # the page's own style applied: its CSP allows it by hash
    assert danish["h1"] == "Denne kupon er allerede brugt" and german["h1"] == "Dieser Gutschein ist abgelaufen"
    assert unstyled["width"] == "none"  # and a policy that does not name it keeps it out
