"""The kiosk page in Debian's headless Chromium: live updates, QR, every locale's glyphs, every
screen size, the language switch, untrusted text and logos."""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

import pytest
import zxingcpp
from fontTools.ttLib import TTFont
from PIL import Image, ImageChops

from kiosk.config import LOCALES, load_config
from kiosk.core.flow import NoticeKind, Screen, State
from kiosk.core.voucher import parse_voucher
from kiosk.devices.screen.browser import HeadlessBrowser
from kiosk.devices.screen.snapshot import render_voucher_png
from kiosk.devices.screen.web_screen import WebScreen
from kiosk.logos import LogoCache
from kiosk.presentation.fonts import FONT_FILES, font_file
from kiosk.presentation.i18n import labels
from kiosk.presentation.view import build_screen_view
from kiosk.runtime import open_kiosk
from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK, sample_code
from kiosk.sim.kiosk_config import write_kiosk_config
from kiosk.sim.virtual_scanner import VirtualScanner
from tests.conftest import QuietHandler, run_kiosk, serve_on_loopback

pytestmark = pytest.mark.integration

VOUCHER = parse_voucher(
    {
        "code": "GB15-07UX",
        "link": "https://gron-butik.example/redeem?code=GB15-07UX",
        "type": "amount",
        "value": 123456,
        "unit": "HUF",
        "conditions": "Min. vásárlás 2000 Ft. Érvényes: őszi–téli termékekre. Çdo ë, ß, æ, ø, å, œ, €.",
        "expires_at": "2027-03-15T12:00:00Z",
        "shop": {"name": "Grøn Butik – Győr", "description": "Ökologiai bolt; «économie» circulaire."},
    }
)


def decode(png: bytes) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


async def page_with(screen: WebScreen, browser: HeadlessBrowser) -> None:
    await screen.start()
    await screen.attach_capture(browser)


def test_scan_through_the_virtual_scanner_shows_the_voucher_live(backend, tmp_path: Path) -> None:
    code = sample_code("on_demand")

    async def scenario() -> tuple[bytes, str, dict]:
        with VirtualScanner(terminator="cr") as scanner:
            config = load_config(
                write_kiosk_config(
                    tmp_path / "kiosk.toml",
                    backend_url=backend.url,
                    token=DEMO_KIOSK_TOKEN,
                    drop_point=DROP_POINT_DK,
                    scanner_device=scanner.path,
                    screen_type="web",
                )
            )
            async with open_kiosk(config) as kiosk, HeadlessBrowser(800, 480) as browser:
                assert await kiosk.wait_ready()
                await browser.navigate(kiosk.screen.url)
                await browser.wait_for("document.body.dataset.state === 'idle'")
                scanner.type(code)
                await browser.wait_for("document.body.dataset.state === 'showing_voucher'", 10)
                await browser.wait_for("document.querySelector('.qr img').complete")
                text = await browser.evaluate("document.body.innerText")
                status = await browser.evaluate("fetch('/status').then(r => r.json())")
                return await browser.screenshot(), text, status

    png, text, status = asyncio.run(scenario())
    (link,) = decode(png)
    assert link.startswith("https://hyggelig-sko.example/redeem?code=HS-")
    assert link.rsplit("=", 1)[1] in text and "Hyggelig Sko" in text
    assert status["state"] == "showing_voucher" and list(status["scanners"].values()) == ["open"]


def _covered_characters() -> set[int]:
    covered: set[int] = set()
    for role in FONT_FILES:
        path = font_file(role)
        assert path is not None, f"DejaVu {role} is not installed"
        covered |= set(TTFont(str(path)).getBestCmap())
    return covered


def test_every_locale_renders_with_the_kiosk_fonts_and_no_missing_glyphs(tmp_path: Path) -> None:
    covered = _covered_characters()
    screens = [
        Screen(State.SHOWING_VOUCHER, voucher=VOUCHER),
        Screen(State.IDLE),
        *[Screen(State.NOTICE, notice=kind) for kind in NoticeKind],
    ]

    async def scenario() -> dict[str, list]:
        found: dict[str, list] = {}
        screen = WebScreen(port=0)
        async with HeadlessBrowser(1024, 600) as browser:
            await page_with(screen, browser)
            try:
                for locale in LOCALES:
                    texts = []
                    for item in screens:
                        png = await screen.settled(
                            await screen.show(build_screen_view(item, locale, "Europe/Copenhagen"))
                        )
                        fonts_ok = await browser.evaluate(
                            "document.fonts.ready.then(() => ['400 20px KioskSans', '700 20px KioskSans',"
                            " '700 20px KioskMono'].every(f => document.fonts.check(f)))"
                        )
                        loaded = await browser.evaluate(
                            "[...document.fonts].filter(f => f.status === 'loaded').map(f => f.family).sort()"
                        )
                        texts.append((await browser.evaluate("document.body.innerText"), fonts_ok, loaded))
                        if item.state is State.SHOWING_VOUCHER:
                            (tmp_path / f"{locale}.png").write_bytes(png)
                            assert decode(png) == [VOUCHER.link], locale
                    found[locale] = texts
            finally:
                await screen.stop()
        return found

    found = asyncio.run(scenario())
    for locale, texts in found.items():
        for text, fonts_ok, loaded in texts:
            assert fonts_ok and {"KioskSans", "KioskMono"} <= set(loaded), (locale, loaded)
            missing = {ch for ch in text if not ch.isspace() and ord(ch) not in covered}
            assert missing == set(), (locale, missing)
        assert labels(locale)["thank_you"] in texts[0][0]
        assert labels(locale)["notice.backend_trouble"] in "".join(t for t, _, _ in texts)


@pytest.mark.parametrize("size", [(800, 480), (1024, 600), (1920, 1080), (480, 800), (1080, 1920)])
def test_voucher_fits_every_screen_and_its_qr_decodes(size: tuple[int, int]) -> None:
    async def scenario() -> tuple[bytes, dict]:
        screen = WebScreen(port=0)
        async with HeadlessBrowser(*size) as browser:
            await page_with(screen, browser)
            try:
                view = build_screen_view(Screen(State.SHOWING_VOUCHER, voucher=VOUCHER), "hu_HU", "UTC")
                png = await screen.settled(await screen.show(view))
                geometry = await browser.evaluate("""(() => {
                    const qr = document.querySelector('.qr img').getBoundingClientRect();
                    const all = [...document.querySelectorAll('.voucher.active *')].filter(e => e.offsetParent);
                    const outside = all.filter(e => { const r = e.getBoundingClientRect();
                        return r.right > innerWidth + 1 || r.bottom > innerHeight + 1 || r.left < -1; })
                        .map(e => e.className);
                    return {qr: [qr.left, qr.top, qr.right, qr.bottom], width: innerWidth, height: innerHeight,
                            scrollW: document.documentElement.scrollWidth,
                            scrollH: document.documentElement.scrollHeight,
                            outside, discount: document.querySelector('.discount').getBoundingClientRect().height};
                })()""")
                return png, geometry
            finally:
                await screen.stop()

    png, geometry = asyncio.run(scenario())
    width, height = size
    left, top, right, bottom = geometry["qr"]
    assert 0 <= left and right <= width and 0 <= top and bottom <= height
    assert right - left >= min(width, height) * 0.35  # big enough for a phone at arm's length
    assert geometry["scrollW"] <= width and geometry["scrollH"] <= height
    assert geometry["outside"] == []
    assert decode(png) == [VOUCHER.link]


def test_untrusted_text_is_shown_as_text_never_as_markup() -> None:
    hostile = parse_voucher(
        {
            **VOUCHER.to_json(),
            "conditions": '<img src=x onerror="document.title=1">',
            "shop": {"name": "<script>alert(1)</script>", "description": "<b>bold</b>"},
        }
    )

    async def scenario() -> dict:
        screen = WebScreen(port=0)
        async with HeadlessBrowser(800, 480) as browser:
            await page_with(screen, browser)
            try:
                await screen.settled(
                    await screen.show(build_screen_view(Screen(State.SHOWING_VOUCHER, voucher=hostile), "en_GB", "UTC"))
                )
                return await browser.evaluate("""({title: document.title, images: document.images.length,
                    scripts: document.scripts.length, conditions: document.querySelector('.conditions').textContent,
                    shop: document.querySelector('.shop-name').textContent})""")
            finally:
                await screen.stop()

    result = asyncio.run(scenario())
    assert result["title"] == "RE-ZIP" and result["images"] == 2 and result["scripts"] == 1  # logo + QR; kiosk.js
    assert result["conditions"] == '<img src=x onerror="document.title=1">'
    assert result["shop"] == "<script>alert(1)</script>"


def test_touch_language_switch_lasts_one_customer(backend, tmp_path: Path) -> None:
    code = sample_code("private_public")
    path = write_kiosk_config(
        tmp_path / "kiosk.toml",
        backend_url=backend.url,
        token=DEMO_KIOSK_TOKEN,
        drop_point=DROP_POINT_DK,
        screen_type="web",
    )
    text = path.read_text().replace('locale = "en_GB"', 'locale = "en_GB"\nlanguages = ["da_DK", "hu_HU"]')
    text = text.replace('listen = "127.0.0.1:0"', 'listen = "127.0.0.1:0"\ntouch = true')
    path.write_text(text + "\n[flow]\nvoucher_display_s = 1.0\n")
    config = load_config(path)

    async def scenario() -> list[str]:
        seen = []
        async with open_kiosk(config) as kiosk, HeadlessBrowser(800, 480) as browser:
            await browser.navigate(kiosk.screen.url)
            await browser.wait_for("document.querySelectorAll('.languages button').length === 3")
            await browser.evaluate(
                "[...document.querySelectorAll('.languages button')]"
                ".find(b => b.textContent.startsWith('Magyar')).click()"
            )
            seen.append(
                await browser.wait_for(
                    "document.documentElement.lang === 'hu' && document.querySelector('.message .title').textContent"
                )
            )
            kiosk.app.scan(code)
            await browser.wait_for("document.body.dataset.state === 'showing_voucher'", 10)
            seen.append(await browser.evaluate("document.querySelector('.use-code .label').textContent"))
            await browser.wait_for("document.body.dataset.state === 'idle'", 5)
            seen.append(await browser.evaluate("document.querySelector('.message .title').textContent"))
        return seen

    chosen, during, after = asyncio.run(scenario())
    assert chosen == labels("hu_HU")["scan_prompt"]
    assert during == labels("hu_HU")["use_code"]
    assert after == labels("en_GB")["scan_prompt"]


class _LogoServer:
    """Serves a good logo, a slow one, a huge one and a text file, counting requests."""

    def __init__(self, png: bytes) -> None:
        self.hits: dict[str, int] = {}
        outer = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                body, kind = {
                    "/good.png": (png, "image/png"),
                    "/huge.png": (png + b"\0" * 600_000, "image/png"),
                    "/text.png": (b"not an image", "image/png"),
                }.get(self.path, (b"", "text/plain"))
                if self.path == "/slow.png":
                    time.sleep(1.0)
                    body, kind = png, "image/png"
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd, self.url = serve_on_loopback(Handler)


def test_logos_are_checked_cached_and_never_hold_up_the_voucher(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buffer, "PNG")
    server = _LogoServer(buffer.getvalue())

    async def scenario() -> dict:
        cache = LogoCache(tmp_path / "logos", plain_loopback=True)
        results = {}
        for name in ("good", "huge", "text", "missing"):
            results[name] = await cache.get(f"{server.url}/{name}.png", 2.0)
        started = time.perf_counter()
        results["slow_first"] = await cache.get(f"{server.url}/slow.png", 0.15)
        results["slow_wait_ms"] = (time.perf_counter() - started) * 1000
        await asyncio.sleep(1.2)
        results["slow_later"] = await cache.get(f"{server.url}/slow.png", 0.15)
        results["good_again"] = await cache.get(f"{server.url}/good.png", 2.0)
        results["not_https"] = await cache.get("http://shop.example/logo.png", 2.0)
        results["from_disk"] = await LogoCache(tmp_path / "logos", plain_loopback=True).get(
            f"{server.url}/good.png", 2.0
        )
        return results

    try:
        results = asyncio.run(scenario())
    finally:
        server.httpd.shutdown()
    assert results["good"] is not None and results["good"].content_type == "image/png"
    assert results["huge"] is None and results["text"] is None and results["missing"] is None
    assert results["slow_first"] is None and results["slow_wait_ms"] < 400
    assert results["slow_later"] is not None
    assert results["good_again"] is results["good"] and results["not_https"] is None
    assert results["from_disk"] is not None and results["from_disk"].data == results["good"].data
    assert server.hits["/good.png"] == 1 and server.hits["/slow.png"] == 1


def test_voucher_render_command(tmp_path: Path) -> None:
    doc = json.dumps({**VOUCHER.to_json(), "shop": {"name": "Grøn Butik", "description": "Økologi", "logo_url": None}})
    result = run_kiosk("voucher", "render", "--locale", "da_DK", "--json", input=doc)
    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert view["code"] == "GB15-07UX" and view["qr"] == VOUCHER.link and view["expires"] == "15.3.2027"
    assert view["labels"]["use_code"] == "Brug koden" and view["labels"]["expiration_date"] == "Udløbsdato"
    assert view["discount"] == "1.234,56\u00a0HUF" and view["shop_name"] == "Grøn Butik"
    png = tmp_path / "card.png"
    result = run_kiosk("voucher", "render", "--locale", "sq_AL", "--png", str(png), input=doc)
    assert result.returncode == 0, result.stderr
    assert decode(png.read_bytes()) == [VOUCHER.link]
    bad = run_kiosk("voucher", "render", "--locale", "en_GB", input=json.dumps({**VOUCHER.to_json(), "unit": "%"}))
    assert bad.returncode == 2 and "unit" in bad.stderr


#: Records, as the page acknowledges each frame, which font faces had loaded and what the code said.
WATCH_ACKS = """
window.acks = [];
const post = window.fetch;
window.fetch = function (url, options) {
  if (url === "/ack") window.acks.push({seq: JSON.parse(options.body).seq,
    faces: [...document.fonts].map((face) => `${face.family} ${face.weight} ${face.status}`),
    code: document.querySelector(".use-code .code").textContent});
  return post.apply(this, arguments);
};
"""
FACES = {"KioskSans 400", "KioskSans 700", "KioskMono 700"}


async def _settled_reference(locale: str) -> tuple[bytes, list[dict], bool]:
    """The voucher as a cold page paints it, taken after a long settle; and what the page knew when
    it acknowledged the frame."""
    screen = WebScreen(port=0, ack_timeout_s=20)
    await screen.start()
    try:
        async with HeadlessBrowser(800, 480) as browser:
            await browser.run_on_every_page(WATCH_ACKS)
            await screen.attach_capture(browser)
            view = build_screen_view(Screen(State.SHOWING_VOUCHER, voucher=VOUCHER), locale, "UTC")
            seq = await screen.show(view)
            await screen.settled(seq)
            await asyncio.sleep(1.5)
            settled = await browser.evaluate("document.fonts.ready.then(() => document.fonts.status === 'loaded')")
            return (
                await browser.screenshot(),
                await browser.evaluate("window.acks"),
                settled and screen.acknowledged == seq,
            )
    finally:
        await screen.stop()


@pytest.mark.parametrize("locale", ["hu_HU", "da_DK"])
def test_every_captured_frame_holds_its_texts(locale: str, tmp_path: Path) -> None:
    """The page acknowledges a frame only once its fonts have loaded and it is painted: every render of
    one voucher, one at a time or two at once, is the same picture, pixel for pixel, as one taken
    after a long settle. (Same Chromium, fonts and software rasteriser: renders are deterministic,
    so no tolerance; a frame taken too early lacks whole lines of text.)"""

    async def scenario() -> tuple[tuple[bytes, list[dict], bool], list[bytes]]:
        reference = await _settled_reference(locale)
        one_at_a_time = [await render_voucher_png(VOUCHER, locale, "UTC", (800, 480)) for _ in range(3)]
        two_at_once = await asyncio.gather(*(render_voucher_png(VOUCHER, locale, "UTC", (800, 480)) for _ in range(2)))
        return reference, [*one_at_a_time, *two_at_once]

    (reference, acks, settled), renders = asyncio.run(scenario())
    assert settled and decode(reference) == [VOUCHER.link]
    (ack,) = [ack for ack in acks if ack["code"]]  # the voucher frame's acknowledgement
    assert {face.rsplit(" ", 1)[0] for face in ack["faces"]} == FACES
    assert all(face.endswith(" loaded") for face in ack["faces"]), ack
    assert ack["code"] == VOUCHER.code
    expected = Image.open(io.BytesIO(reference)).convert("RGB")
    for index, png in enumerate(renders):
        picture = Image.open(io.BytesIO(png)).convert("RGB")
        if ImageChops.difference(picture, expected).getbbox() is not None:
            (tmp_path / f"render-{index}.png").write_bytes(png)
            (tmp_path / "reference.png").write_bytes(reference)
            pytest.fail(f"render {index} differs from the settled frame (see {tmp_path})")
