"""The pages a customer sees when a voucher's link cannot take them to the shop. Pure.

A customer opens the voucher's QR link (``GET /redeem?code=...``) on their phone; when the code is
already used, withdrawn, expired or unknown, or Voucherify cannot be asked right now, they get one
short page that says so in their language, chosen from the browser's ``Accept-Language`` among the
kiosk's locales. The page is self-contained: no script, no request to anywhere (its only style is
inline, allowed by its hash in a strict Content-Security-Policy), and the code it repeats is text,
cleaned of what must never reach a screen and escaped.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from typing import Literal, NamedTuple

from babel.core import get_global

from kiosk.config import LOCALES
from kiosk.core.text import clean_text
from kiosk.presentation.i18n import labels

__all__ = ["PageOutcome", "OUTCOMES", "PageResponse", "redeem_page", "choose_locale", "DEFAULT_LOCALE"]

PageOutcome = Literal["already_redeemed", "disabled", "expired", "unknown", "unavailable"]
OUTCOMES: tuple[PageOutcome, ...] = ("already_redeemed", "disabled", "expired", "unknown", "unavailable")
DEFAULT_LOCALE = "en_GB"
#: Gone for a code that once worked, Not Found for one never issued, and Service Unavailable (with
#: a time to come back) when Voucherify could not be asked: the code may still be good.
_STATUS: dict[PageOutcome, int] = {
    "already_redeemed": 410,
    "disabled": 410,
    "expired": 410,
    "unknown": 404,
    "unavailable": 503,
}
_RETRY_AFTER_S = 60
#: Longer codes than any voucher has are cut (the page repeats what the customer's link carried).
_MAX_CODE_CHARS = 64
#: Browsers send a few languages; a header far longer than that is read only this far.
_MAX_ACCEPT_LANGUAGE_CHARS = 1024
_LANGUAGE_RANGE = re.compile(
    r"\s*(\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)\s*(?:;\s*[qQ]=(0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?))?\s*"
)

_STYLE = (
    "body{margin:0;padding:0 1rem;background:#eef2ee;color:#1c211d;font:1.0625rem/1.5 system-ui,-apple-system,'Segoe UI',"
    "Roboto,sans-serif}"
    "main{box-sizing:border-box;max-width:34rem;margin:10vh auto;padding:2rem 1.5rem;background:#fff;"
    "border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.15)}"
    "h1{font-size:1.5rem;line-height:1.25;margin:0 0 .75rem}"
    "p{margin:0 0 1rem}"
    ".code{margin:1.5rem 0 0;color:#4b544d;font-size:.95rem}"
    "code{display:block;margin-top:.25rem;color:#1c211d;font:600 1.25rem ui-monospace,Menlo,Consolas,monospace;"
    "overflow-wrap:anywhere}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode("utf-8")).digest()).decode("ascii")
_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class PageResponse(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


def _language_defaults() -> dict[str, str]:
    """Each language's locale for a browser that names no region we have: the one CLDR deems most
    likely for the language (de → de_DE, fr → fr_FR) when it is ours, else its first one (en_GB)."""
    likely = get_global("likely_subtags")
    defaults: dict[str, str] = {}
    for locale in LOCALES:
        language = locale.split("_")[0]
        preferred = f"{language}_{str(likely.get(language, '')).rsplit('_', 1)[-1]}"
        defaults.setdefault(language, preferred if preferred in LOCALES else locale)
    return defaults


_LANGUAGE_DEFAULTS = _language_defaults()


def choose_locale(accept_language: str | None) -> str:
    """The kiosk locale that best serves an ``Accept-Language`` header (RFC 9110): ranges by their
    q-value (ties in the order sent, ``q=0`` meaning "not this"), each matched by language and
    region (``de-AT`` → de_AT), or its language's own locale (``de``, ``de-CH`` → de_DE); en_GB when
    nothing matches, and for a header that is missing or cannot be read."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "")[:_MAX_ACCEPT_LANGUAGE_CHARS].split(",")):
        match = _LANGUAGE_RANGE.fullmatch(item)
        if match is None:
            continue
        weight = float(match.group(2)) if match.group(2) is not None else 1.0
        if weight > 0:
            ranked.append((-weight, position, match.group(1).lower()))
    for _, _, language_range in sorted(ranked):
        if language_range == "*":
            return DEFAULT_LOCALE
        language, *subtags = language_range.split("-")
        region = next((tag for tag in subtags if len(tag) == 2 and tag.isalpha()), "")
        if f"{language}_{region.upper()}" in LOCALES:
            return f"{language}_{region.upper()}"
        if language in _LANGUAGE_DEFAULTS:
            return _LANGUAGE_DEFAULTS[language]
    return DEFAULT_LOCALE


def redeem_page(outcome: PageOutcome, code: str, accept_language: str | None) -> PageResponse:
    """The page for a link whose code cannot be redeemed, in the customer's language."""
    locale = choose_locale(accept_language)
    text = labels(locale)
    language_tag = locale.replace("_", "-")
    title = html.escape(text[f"redeem.{outcome}"])
    hint = html.escape(text[f"redeem.{outcome}.hint"])
    shown = clean_text(code, multiline=False).strip()
    if len(shown) > _MAX_CODE_CHARS:
        shown = shown[:_MAX_CODE_CHARS] + "…"
    code_part = (
        f'<p class="code">{html.escape(text["redeem.code"])}<code>{html.escape(shown)}</code></p>' if shown else ""
    )
    body = (
        f'<!doctype html>\n<html lang="{language_tag}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{title}</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{title}</h1><p>{hint}</p>{code_part}</main></body></html>\n"
    )
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Language": language_tag,
        "Content-Security-Policy": _CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Vary": "Accept-Language",
    }
    if outcome == "unavailable":
        headers["Retry-After"] = str(_RETRY_AFTER_S)
    return PageResponse(_STATUS[outcome], headers, body.encode("utf-8"))
