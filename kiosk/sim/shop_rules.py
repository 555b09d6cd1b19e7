"""What the stand-in backend accepts from shops: pools, and vouchers (a batch with each of its codes,
or a webhook's answer), checked against RE-ZIP's seed documents. Pure.

Each refusal names its field, ``field: reason``, as the backend's 400 answers do. Where the seeds
are silent, decided here:

- Pool names: 1 to 200 characters, not blank, no control characters.
- Countries: ISO 3166-1 alpha-2 codes that name a country (``kiosk.core.countries``), each once.
- ``webhook_url``: required for an on_demand pool and refused on a static one; https with a host,
  plain http only to a loopback host (``kiosk.core.urls``, the kiosk's rule for its backend); no
  user name or password in it, no spaces or control characters, ASCII only (IDN hosts in punycode).
- Vouchers: the seed model through ``kiosk.core.voucher.parse_voucher`` (code shape, type, value,
  ISO 4217 unit for an amount), and, stricter than the kiosk reads answers, ``conditions`` must be
  there (text, possibly empty: the seed marks it required), a link the kiosk would drop is refused
  rather than dropped, and so are links that redeem nothing: plain ``http`` (no TLS; except to a
  loopback host, as for ``webhook_url``: the demo's own shop service) and schemes that run or read
  local content. An app's own scheme (``myshopapp://redeem?…``) is fine.
- ``expires_at`` must lie ahead and within the voucher model's horizon (``parse_voucher`` with the
  time: not expired, at most ten years ahead).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from kiosk.core.countries import ASSIGNED as COUNTRIES
from kiosk.core.urls import plain_http_allowed, url_problem
from kiosk.core.voucher import VoucherError, parse_voucher

__all__ = ["pool_problem", "shop_voucher", "VISIBILITIES", "POOL_TYPES"]

VISIBILITIES = ("private", "public", "private_public")
POOL_TYPES = ("static", "on_demand")
MAX_NAME_CHARS = 200
#: Links that are no way to redeem a voucher: no TLS, or script and local content.
REFUSED_LINK_SCHEMES = frozenset({"http", "javascript", "vbscript", "data", "file", "blob", "about"})
_VOUCHER_FIELDS = ("code", "link", "type", "value", "unit", "conditions", "expires_at")


def pool_problem(doc: Mapping[str, Any]) -> str | None:
    """What is wrong with a pool to be created, as ``field: reason``; None when nothing is."""
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        return "name: required, as text"
    if len(name) > MAX_NAME_CHARS or any(unicodedata.category(ch) == "Cc" for ch in name):
        return f"name: at most {MAX_NAME_CHARS} characters, without control characters"
    countries = doc.get("countries")
    if not isinstance(countries, list) or not countries:
        return "countries: must be a non-empty list of ISO 3166 alpha-2 codes"
    for country in countries:
        if not isinstance(country, str) or country not in COUNTRIES:
            return f"countries: {str(country)[:20]!r} is not an ISO 3166 alpha-2 country code such as DK"
    if len(set(countries)) != len(countries):
        return "countries: each country once"
    if doc.get("visibility") not in VISIBILITIES:
        return "visibility: must be private, public or private_public"
    pool_type = doc.get("pool_type", "static")
    if pool_type not in POOL_TYPES:
        return "pool_type: must be static or on_demand"
    url = doc.get("webhook_url")
    if pool_type == "static":
        return None if url is None else "webhook_url: only an on_demand pool has one"
    problem = _webhook_url_problem(url)
    return f"webhook_url: {problem}" if problem else None


def _webhook_url_problem(url: Any) -> str | None:
    return url_problem(url) if isinstance(url, str) and url else "required for an on_demand pool"


def shop_voucher(doc: Any, *, now: datetime) -> dict[str, Any]:
    """A voucher as a shop may hand it over, normalised to the seed fields (anything else, a
    ``shop`` profile included, is left out: the shop is the pool's); ``VoucherError`` otherwise."""
    if not isinstance(doc, Mapping):
        raise VoucherError("voucher", "expected a JSON object")
    if not isinstance(doc.get("conditions"), str):
        raise VoucherError("conditions", "is required, as text (it may be empty)")
    voucher = parse_voucher({name: doc.get(name) for name in _VOUCHER_FIELDS}, link_schemes=None, now=now)
    if voucher.warnings:
        raise VoucherError("link", voucher.warnings[0].removeprefix("link dropped: "))
    if voucher.link is not None:
        scheme = voucher.link.split(":", 1)[0].lower()
        loopback = scheme == "http" and plain_http_allowed(urlsplit(voucher.link).hostname)
        if scheme in REFUSED_LINK_SCHEMES and not loopback:
            raise VoucherError("link", f"a {scheme}: link redeems nothing safely: use https or an app's own scheme")
    return voucher.to_json()
