"""The customer's pages for a voucher link that cannot be redeemed: the locale from Accept-Language,
the catalog's texts, a strict page whose only style its CSP allows by hash, and the code as text."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.config import LOCALES
from kiosk.core.text import clean_text
from kiosk.presentation.i18n import labels
from kiosk.shop.pages import OUTCOMES, choose_locale, redeem_page


@pytest.mark.parametrize(
    "header, locale",
    [
        (None, "en_GB"),
        ("", "en_GB"),
        ("de", "de_DE"),
        ("de-AT", "de_AT"),
        ("de-CH", "de_DE"),
        ("fr-CA", "fr_FR"),
        ("fr-BE,fr;q=0.9", "fr_BE"),
        ("nl-BE", "nl_BE"),
        ("nl", "nl_NL"),
        ("en-US,en;q=0.9", "en_GB"),
        ("DA-dk", "da_DK"),
        ("sq", "sq_AL"),
        ("hu-HU,hu;q=0.9,en-US;q=0.8,en;q=0.7", "hu_HU"),
        ("zh-CN,zh;q=0.9,de;q=0.8", "de_DE"),  # the first language we have, by weight
        ("en;q=0.5, da;q=0.8", "da_DK"),  # weights, not order, decide
        ("da;q=0.8, de;q=0.8", "da_DK"),  # equal weights: the order sent
        ("de;q=0, fr", "fr_FR"),
        ("de;q=0", "en_GB"),  # q=0 is "not this": nothing acceptable is left
        ("*", "en_GB"),
        ("zh, *;q=0.1", "en_GB"),
        ("de;q=1.000", "de_DE"),
        ("de;q=1.5, fr", "fr_FR"),  # an impossible weight: that range cannot be read, the next can
        ("de;q=abc, nl", "nl_NL"),
        ("de ; q=0.5 , fr ; q=0.4", "de_DE"),
        ("sr-Latn-RS, de-Latn-AT", "de_AT"),  # a script subtag before the region
        ("toolonglanguage, da", "da_DK"),
        ("\x00\x1b[2J, hu", "hu_HU"),
        (",,,;;;===", "en_GB"),
        ("x" * 100_000 + ", de", "en_GB"),  # read only so far
    ],
)
def test_the_locale_comes_from_accept_language(header: str | None, locale: str) -> None:
    assert choose_locale(header) == locale


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.lists(
            st.tuples(
                st.sampled_from(["de", "de-AT", "fr-CA", "en", "*", "sq-AL", "xx", "nl-be", "hu"]), st.floats(0, 1)
            ),
            max_size=6,
        ).map(lambda items: ", ".join(f"{lang};q={q:.3f}" for lang, q in items)),
    )
)
def test_any_header_gives_one_of_the_kiosk_locales(header: str) -> None:
    assert choose_locale(header) in LOCALES


class _Page(HTMLParser):
    """What a browser would show: the text of each element, and the attributes it reads."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.text: dict[str, str] = {}
        self.tags: list[str] = []
        self.lang: str | None = None
        self.style = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.stack.append(tag)
        if tag == "html":
            self.lang = dict(attrs).get("lang")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if self.stack:
            self.text[self.stack[-1]] = self.text.get(self.stack[-1], "") + data
            if self.stack[-1] == "style":
                self.style += data


def _read(body: bytes) -> _Page:
    page = _Page()
    page.feed(body.decode("utf-8"))
    return page


@pytest.mark.parametrize("outcome", OUTCOMES)
@pytest.mark.parametrize("locale", LOCALES)
def test_every_outcome_in_every_locale(outcome: str, locale: str) -> None:
    status, headers, body = redeem_page(outcome, "HS-1234ABCD", locale.replace("_", "-"))  # type: ignore[arg-type]
    text = labels(locale)
    page = _read(body)
    assert status == {"unknown": 404, "unavailable": 503}.get(outcome, 410)
    assert page.lang == locale.replace("_", "-") == headers["Content-Language"]
    assert page.text["title"] == page.text["h1"] == text[f"redeem.{outcome}"]
    assert page.text["p"] == text[f"redeem.{outcome}.hint"] + text["redeem.code"]
    assert page.text["code"] == "HS-1234ABCD"
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert ("Retry-After" in headers) == (outcome == "unavailable")


def test_the_page_allows_only_its_own_style() -> None:
    _, headers, body = redeem_page("expired", "CODE", "da")
    page = _read(body)
    digest = base64.b64encode(hashlib.sha256(page.style.encode("utf-8")).digest()).decode()
    policy = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    assert policy == {
        "default-src": "'none'",
        "style-src": f"'sha256-{digest}'",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
    }
    assert "script" not in page.tags and not re.search(rb"<(script|img|link|iframe|form|a)\b", body)
    assert headers["Referrer-Policy"] == "no-referrer" and headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Vary"] == "Accept-Language"


def test_no_code_no_code_line() -> None:
    page = _read(redeem_page("unknown", "", "en").body)
    assert "code" not in page.tags and page.text["p"] == labels("en_GB")["redeem.unknown.hint"]


@settings(max_examples=300, deadline=None)
@given(
    code=st.one_of(
        st.text(max_size=100),
        st.sampled_from(
            [
                "<script>alert(1)</script>",
                '"><img src=x onerror=alert(1)>',
                "&amp;",
                "]]>",
                "\x1b[2J\x07",
                "\u202eDCBA",
                "a\nb\rc",
                "\ud800",
                "</code></p></main><a href=//x>win</a>",
                "{code}",
                "😀" * 80,
            ]
        ),
    )
)
def test_the_code_is_shown_as_text_whatever_it_holds(code: str) -> None:
    body = redeem_page("already_redeemed", code, "de").body
    page = _read(body)
    shown = clean_text(code, multiline=False).strip()
    expected = shown if len(shown) <= 64 else shown[:64] + "…"
    assert page.text.get("code", "") == expected
    assert page.tags == ["html", "head", "meta", "meta", "meta", "title", "style", "body", "main", "h1", "p"] + (
        ["p", "code"] if expected else []
    )
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", body.decode("utf-8"))
