"""WCAG 2.2 AA on every screen of the kiosk page (issue 17): axe-core, pinned in tests/a11y/ and
installed by ``make``, runs inside the kiosk's own headless Chromium over every screen × locale ×
size, and the page is measured as rendered: contrast from computed colours, touch targets from
layout boxes, ``lang`` per locale and on shop text, animations under ``prefers-reduced-motion``."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from kiosk.config import LOCALES, load_config
from kiosk.core.flow import NoticeKind, Screen, State
from kiosk.core.voucher import parse_voucher
from kiosk.devices.screen.browser import HeadlessBrowser
from kiosk.devices.screen.web_screen import WebScreen
from kiosk.logos import LogoCache
from kiosk.presentation.i18n import labels
from kiosk.presentation.view import build_screen_view
from kiosk.runtime import open_kiosk
from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK, sample_code
from kiosk.sim.kiosk_config import write_kiosk_config
from tests.conftest import REPO
from tests.integration.test_kiosk_page import VOUCHER, _LogoServer

pytestmark = pytest.mark.integration

AXE = REPO / "tests" / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
#: A touch kiosk's language switch as a border-town installation might offer it.
SWITCH = ("da_DK", "de_DE", "en_GB", "hu_HU")
SIZES = [(800, 480), (1024, 600), (1920, 1080), (480, 800), (1080, 1920)]
#: axe-core's tags for the success criteria of WCAG 2.0, 2.1 and 2.2 at levels A and AA.
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
#: WCAG 2.5.5's size for touch targets (axe checks 2.5.8's 24 px; the issue asks for 44).
TARGET_PX = 44


@dataclass(frozen=True)
class Case:
    name: str
    screen: Screen
    offline: bool = False


def _cases(logo_url: str) -> list[Case]:
    doc = VOUCHER.to_json()
    assert VOUCHER.shop is not None
    with_logo = replace(VOUCHER, shop=replace(VOUCHER.shop, logo_url=logo_url))  # a loopback logo
    percentage = parse_voucher(
        {**doc, "type": "percentage", "value": 15, "unit": "%", "link": None, "expires_at": None}
    )
    gift = parse_voucher({**doc, "type": "gift", "value": 1, "unit": "Stofpose – Tragetasche", "shop": None})
    cases = [
        Case("idle", Screen(State.IDLE)),
        Case("drop prompt", Screen(State.AWAITING_DEPOSIT, code="RZ-1234-5678")),
        Case("issuing", Screen(State.ISSUING, code="RZ-1234-5678")),
        Case("voucher amount, logo, link, expiry", Screen(State.SHOWING_VOUCHER, voucher=with_logo)),
        Case("voucher amount, no logo", Screen(State.SHOWING_VOUCHER, voucher=VOUCHER)),
        Case("voucher percentage, no link, no expiry", Screen(State.SHOWING_VOUCHER, voucher=percentage)),
        Case("voucher gift, no shop", Screen(State.SHOWING_VOUCHER, voucher=gift)),
        Case("voucher plain", Screen(State.SHOWING_VOUCHER, voucher=VOUCHER, plain=True)),
        Case("voucher kept up by a touch", Screen(State.SHOWING_VOUCHER, voucher=VOUCHER, kept=True)),
        Case("printer trouble", Screen(State.SHOWING_VOUCHER, voucher=with_logo, printer="trouble")),
        Case("printer back", Screen(State.SHOWING_VOUCHER, voucher=VOUCHER, printer="back")),
        *[Case(f"notice {kind.value}", Screen(State.NOTICE, notice=kind)) for kind in NoticeKind],
        Case("notice unreadable", Screen(State.NOTICE, notice=NoticeKind.INVALID_CODE, reason="unreadable")),
        Case("offline idle", Screen(State.IDLE), offline=True),
        Case("offline voucher", Screen(State.SHOWING_VOUCHER, voucher=VOUCHER), offline=True),
    ]
    return cases


#: Runs axe-core's WCAG A/AA rules and the kiosk's own measurements on the page as painted.
AUDIT = """
(async () => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: TAGS},
                                          resultTypes: ["violations", "incomplete"]});
  const brief = (items) => items.map((rule) => `${rule.id}: ` + rule.nodes.map(
      (node) => `${node.target.join(" ")} (${node.failureSummary || ""})`).join("; "));
  const rgba = (text) => { const [r, g, b, a = 1] = text.match(/[\\d.]+/g).map(Number); return [r, g, b, a]; };
  const over = ([r, g, b, a], [R, G, B]) => [r * a + R * (1 - a), g * a + G * (1 - a), b * a + B * (1 - a)];
  const background = (element) => {
    const layers = [];
    for (let node = element; node; node = node.parentElement) {
      const colour = rgba(getComputedStyle(node).backgroundColor);
      if (colour[3] > 0) layers.push(colour);
      if (colour[3] === 1) break;
    }
    return layers.reduceRight((below, layer) => over(layer, below), [255, 255, 255]);
  };
  const luminance = (rgb) => {
    const [r, g, b] = rgb.map((v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => { const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
                            return (hi + 0.05) / (lo + 0.05); };
  const shown = (element) => element.getClientRects().length > 0 && getComputedStyle(element).visibility === "visible";
  const contrast = [];
  const texts = [];
  for (const element of document.querySelectorAll("body *")) {
    if (!shown(element)) continue;
    const style = getComputedStyle(element);
    const own = [...element.childNodes].some((node) => node.nodeType === 3 && node.textContent.trim());
    const pseudo = getComputedStyle(element, "::after").content;
    if (!own && !(pseudo && pseudo !== "none" && pseudo !== "normal")) continue;
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    const back = background(element);
    const measured = ratio(over(rgba(style.color), back), back);
    texts.push(measured);
    if (measured < (large ? 3 : 4.5)) contrast.push(`${element.className || element.tagName}: ${measured.toFixed(2)}`);
  }
  for (const control of document.querySelectorAll("button")) {
    if (!shown(control)) continue;
    const style = getComputedStyle(control);
    const outside = background(control.parentElement);
    const edge = Math.max(ratio(rgba(style.borderTopColor).slice(0, 3), outside), ratio(background(control), outside));
    if (edge < 3) contrast.push(`button ${control.textContent}: edge ${edge.toFixed(2)}`);
  }
  const targets = [...document.querySelectorAll("button, a, input, select, [role=button], [tabindex]")]
    .filter(shown).map((element) => { const box = element.getBoundingClientRect();
      return {name: element.textContent, width: box.width, height: box.height}; });
  const floor = document.querySelector(".languages").hidden ? innerHeight
                : document.querySelector(".languages").getBoundingClientRect().top;
  const cut = [...document.querySelectorAll(".screen.active *")].filter(shown).filter((element) => {
    const box = element.getBoundingClientRect();
    return box.bottom > floor + 1 || box.right > innerWidth + 1 || box.left < -1;
  }).map((element) => element.className || element.tagName);
  const language = (selector) => { const node = document.querySelector(selector);
                                   return node.hasAttribute("lang") ? node.getAttribute("lang") : null; };
  return {violations: brief(result.violations),
          incompleteContrast: brief(result.incomplete.filter((rule) => rule.id === "color-contrast")),
          contrast, cut, texts: texts.length, targets, lang: document.documentElement.lang,
          shopLang: [".shop-name", ".conditions", ".about p"].map(language),
          state: document.body.dataset.state};
})()
""".replace("TAGS", json.dumps(WCAG_AA))


async def _open_page(browser: HeadlessBrowser, screen: WebScreen) -> None:
    await screen.start()
    await screen.attach_capture(browser)
    assert AXE.is_file(), "axe-core is not installed: run make (cd tests/a11y && npm ci)"
    await browser.evaluate(AXE.read_text() + ";true")  # DevTools' scripts are not bound by the page's CSP


async def _audit(browser: HeadlessBrowser, screen: WebScreen, case: Case, locale: str) -> dict[str, Any]:
    screen.offline = case.offline
    await screen.settled(await screen.show(build_screen_view(case.screen, locale, "Europe/Copenhagen")))
    result: dict[str, Any] = await browser.evaluate(AUDIT)
    return result


def _logo_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 48), (30, 90, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def test_every_screen_in_every_locale_and_size_meets_wcag_aa(tmp_path: Path) -> None:
    """axe-core's WCAG 2.2 A/AA rules find nothing on any screen; every text meets its contrast
    (4.5:1, 3:1 when large) and every control its 3:1 edge, measured from computed colours; every
    touch target is 44×44 px or more; nothing is cut off by the screen's edge or the language
    switch; the page's lang is the locale's and shop text is lang=""."""
    server = _LogoServer(_logo_png())

    async def scenario() -> dict[tuple[str, str, tuple[int, int]], dict[str, Any]]:
        found = {}
        logos = LogoCache(tmp_path / "logos", plain_loopback=True)
        cases = _cases(f"{server.url}/good.png")
        assert await logos.get(f"{server.url}/good.png", 5.0) is not None  # in the cache before the matrix

        async def audit(size: tuple[int, int]) -> None:
            screen = WebScreen(port=0, touch=True, locales=SWITCH, logos=logos, ack_timeout_s=5)
            async with HeadlessBrowser(*size) as browser:
                await _open_page(browser, screen)
                try:
                    await browser.set_viewport(*size)
                    for locale in LOCALES:
                        for case in cases:
                            found[case.name, locale, size] = await _audit(browser, screen, case, locale)
                finally:
                    await screen.stop()

        # A browser for each size, each on a page server of its own, all at once: an audit mostly
        # waits (for the frame's acknowledgement, for axe-core's timers), so one browser going
        # through the matrix alone took 97 s with the cores mostly idle.
        await asyncio.gather(*(audit(size) for size in SIZES))
        return found

    try:
        found = asyncio.run(scenario())
    finally:
        server.httpd.shutdown()
    assert len(found) == len(SIZES) * len(LOCALES) * len(_cases(""))
    failures = []
    for (name, locale, size), result in found.items():
        where = f"{name} / {locale} / {size[0]}x{size[1]}"
        small = [t for t in result["targets"] if t["width"] < TARGET_PX or t["height"] < TARGET_PX]
        problems = [*result["violations"], *result["incompleteContrast"], *result["contrast"], *map(str, small)]
        problems += [f"cut off: {name}" for name in result["cut"]]
        if result["lang"] != locale.split("_")[0]:
            problems.append(f"lang {result['lang']!r}")
        if result["shopLang"] != ["", "", ""]:
            problems.append(f"shop text lang {result['shopLang']}")
        if len(result["targets"]) != len(SWITCH) or result["texts"] < 2:
            problems.append(f"nothing measured: {len(result['targets'])} targets, {result['texts']} texts")
        failures += [f"{where}: {problem}" for problem in problems]
    assert failures == [], "\n".join(failures[:40])


def test_animations_stop_when_reduced_motion_is_asked_for() -> None:
    """The idle pulse and the issuing spinner run normally and not at all under
    ``prefers-reduced-motion: reduce`` (emulated through DevTools)."""
    count = "document.getAnimations().filter((a) => a.playState === 'running').length"

    async def scenario() -> dict[str, list[int]]:
        running: dict[str, list[int]] = {"no-preference": [], "reduce": []}
        screen = WebScreen(port=0)
        async with HeadlessBrowser(800, 480) as browser:
            await screen.start()
            await screen.attach_capture(browser)
            try:
                for preference in running:
                    await browser.call(
                        "Emulation.setEmulatedMedia", features=[{"name": "prefers-reduced-motion", "value": preference}]
                    )
                    for state in (State.IDLE, State.ISSUING):
                        await screen.settled(await screen.show(build_screen_view(Screen(state), "da_DK", "UTC")))
                        running[preference].append(await browser.evaluate(count))
            finally:
                await screen.stop()
        return running

    running = asyncio.run(scenario())
    assert running["no-preference"] == [1, 1]  # the pulse, the spinner
    assert running["reduce"] == [0, 0]


def test_a_touch_keeps_the_voucher_up_and_says_so(backend, tmp_path: Path) -> None:
    """Time to read: on a touch kiosk a touch on the voucher (a real pointer press in Chromium) starts
    its time again and the page announces it in a status region; a touch from another origin is refused."""
    path = write_kiosk_config(
        tmp_path / "kiosk.toml",
        backend_url=backend.url,
        token=DEMO_KIOSK_TOKEN,
        drop_point=DROP_POINT_DK,
        screen_type="web",
    )
    text = path.read_text().replace('listen = "127.0.0.1:0"', 'listen = "127.0.0.1:0"\ntouch = true')
    path.write_text(text + "\n[flow]\nvoucher_display_s = 3.0\n")
    config = load_config(path)

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with open_kiosk(config) as kiosk, HeadlessBrowser(800, 480) as browser:
            await browser.navigate(kiosk.screen.url)
            await browser.wait_for("document.body.dataset.state === 'idle'")
            kiosk.app.scan(sample_code("on_demand"))
            await browser.wait_for("document.body.dataset.state === 'showing_voucher'", 10)
            loop = asyncio.get_running_loop()
            shown_at = loop.time()
            async with aiohttp.ClientSession() as http:  # another site's page cannot keep it up
                async with http.post(
                    kiosk.screen.url + "touch", json={}, headers={"Origin": "http://127.0.0.1:9"}
                ) as response:
                    seen["foreign"] = response.status
            await asyncio.sleep(0.2)
            seen["status before"] = await browser.evaluate("document.querySelector('.voucher .status').textContent")
            await asyncio.sleep(1.0)
            for kind in ("mousePressed", "mouseReleased"):
                await browser.call("Input.dispatchMouseEvent", type=kind, x=200, y=300, button="left", clickCount=1)
            seen["status after"] = await browser.wait_for("document.querySelector('.voucher .status').textContent", 5)
            seen["role"] = await browser.evaluate("document.querySelector('.voucher .status').getAttribute('role')")
            await asyncio.sleep(max(0.0, shown_at + 3.6 - loop.time()))  # past the voucher's first 3 s
            seen["state past its first time"] = kiosk.app.flow.state.value
            await browser.wait_for("document.body.dataset.state === 'idle'", 10)
        return seen

    seen = asyncio.run(scenario())
    assert seen["foreign"] == 403
    assert seen["status before"] == ""
    assert seen["status after"] == labels("en_GB")["voucher.kept"] and seen["role"] == "status"
    assert seen["state past its first time"] == "showing_voucher"
