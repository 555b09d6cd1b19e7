"""The offline-pool bundle (our proposed API, see ``kiosk.issuance.offline_pools_client``), checked
field by field. Pure: a parsed JSON document and the time in, typed contents or ``BundleError`` out.

A signature only says who sent a bundle, not that its contents are sensible, so a validly signed
bundle is checked as strictly as any other answer:
- its structure (ids, countries, visibilities, the prefix map, the time stamps) must hold, or the
  whole bundle is refused: nothing of it is stored;
- each code's voucher goes through the one voucher validator (``parse_voucher``) with the kiosk's
  link allow-list; a code that fails, names a pool the bundle does not describe or repeats another is
  left out and named in ``refused``, and the rest of the bundle is used.
The same check runs again when a code is claimed, on the stored signed body (``code_from_body``):
the body is the truth, the store's columns only an index into it.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kiosk.core.offline import CachedCode
from kiosk.core.voucher import (
    DEFAULT_LINK_SCHEMES,
    Shop,
    Voucher,
    VoucherError,
    parse_instant,
    parse_shop,
    parse_voucher,
)

__all__ = [
    "BundleError",
    "BundlePool",
    "BundleCode",
    "BundleContents",
    "BodyIndex",
    "parse_bundle",
    "index_body",
    "code_from_body",
    "MAX_CODES",
]

#: A drop point reserves tens of codes per pool; far more than this is not a bundle we asked for.
MAX_CODES = 20_000
_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z._:\-]{0,99}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_PREFIX = re.compile(r"[0-9]{2}[\x21-\x7e]{2}")
_VISIBILITIES = ("private", "public", "private_public")


class BundleError(ValueError):
    """The bundle as a whole cannot be used; the message names the field."""


@dataclass(frozen=True)
class BundlePool:
    id: str
    shop_id: str
    countries: tuple[str, ...]
    visibility: str


@dataclass(frozen=True)
class BundleCode:
    pool: BundlePool
    voucher: Voucher

    def cached(self) -> CachedCode:
        """What offline selection decides on."""
        voucher = self.voucher
        return CachedCode(
            voucher.code,
            self.pool.shop_id,
            self.pool.visibility,
            self.pool.countries,
            voucher.type.value,
            voucher.value,
            voucher.unit,
            voucher.expires_at,
        )


@dataclass(frozen=True)
class BundleContents:
    bundle_id: str
    drop_point_id: str
    country: str
    issued_at: datetime
    expires_at: datetime
    shops: Mapping[str, Shop]
    prefixes: Mapping[str, str]
    pools: Mapping[str, BundlePool]
    codes: tuple[BundleCode, ...]
    #: (code or position, reason) of the codes left out.
    refused: tuple[tuple[str, str], ...]


def parse_bundle(
    doc: Any, *, link_schemes: Iterable[str] | None = DEFAULT_LINK_SCHEMES, now: datetime | None = None
) -> BundleContents:
    """Check a bundle; ``BundleError`` when its structure is broken (see the module's rules)."""
    if not isinstance(doc, Mapping):
        raise BundleError("bundle: expected a JSON object")
    shops_doc = _mapping(doc, "shops")
    shops = {_id(key, "shops"): parse_shop(value) or Shop() for key, value in shops_doc.items()}
    prefixes: dict[str, str] = {}
    for prefix, shop_id in _mapping(doc, "prefixes").items():
        if not _PREFIX.fullmatch(prefix):
            raise BundleError(f"prefixes: {prefix[:10]!r} is not a packaging prefix")
        prefixes[prefix] = _id(shop_id, f"prefixes.{prefix}")
    pools: dict[str, BundlePool] = {}
    for index, item in enumerate(_list(doc, "pools")):
        pool = _pool(item, f"pools[{index}]")
        if pool.id in pools:
            raise BundleError(f"pools[{index}].id: {pool.id} appears twice")
        pools[pool.id] = pool
    items = _list(doc, "codes")
    if len(items) > MAX_CODES:
        raise BundleError(f"codes: more than {MAX_CODES}")
    codes: list[BundleCode] = []
    refused: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        try:
            code = _code(item, pools, shops, link_schemes, now)
        except (VoucherError, BundleError) as exc:
            label = item.get("code") if isinstance(item, Mapping) and isinstance(item.get("code"), str) else None
            refused.append(((label or f"codes[{index}]")[:64], str(exc)))
            continue
        if code.voucher.code in seen:
            refused.append((code.voucher.code, "appears twice in the bundle"))
            continue
        seen.add(code.voucher.code)
        codes.append(code)
    return BundleContents(
        bundle_id=_id(doc.get("bundle_id"), "bundle_id"),
        drop_point_id=_id(doc.get("drop_point_id"), "drop_point_id"),
        country=_country(doc.get("country"), "country"),
        issued_at=_instant(doc.get("issued_at"), "issued_at"),
        expires_at=_instant(doc.get("expires_at"), "expires_at"),
        shops=shops,
        prefixes=prefixes,
        pools=pools,
        codes=tuple(codes),
        refused=tuple(refused),
    )


@dataclass(frozen=True)
class BodyIndex:
    """A stored bundle body, parsed once: its codes' entries by code, its pools and shop profiles,
    and when the reservation ends (a code of an expired bundle is the backend's again)."""

    items: Mapping[str, Mapping[str, Any]]
    pools: Mapping[str, BundlePool]
    shops: Mapping[str, Shop]
    expires_at: datetime


def index_body(doc: Any) -> BodyIndex:
    """Index a stored body for the claims to come; ``BundleError`` when it is not a bundle."""
    if not isinstance(doc, Mapping):
        raise BundleError("bundle: expected a JSON object")
    named = [item for item in _list(doc, "codes") if isinstance(item, Mapping) and isinstance(item.get("code"), str)]
    counts = collections.Counter(item["code"] for item in named)
    items = {item["code"]: item for item in named if counts[item["code"]] == 1}
    pools = {}
    for index, item in enumerate(_list(doc, "pools")):
        pool = _pool(item, f"pools[{index}]")
        pools[pool.id] = pool
    shops = {key: parse_shop(value) or Shop() for key, value in _mapping(doc, "shops").items()}
    return BodyIndex(items, pools, shops, _instant(doc.get("expires_at"), "expires_at"))


def code_from_body(body: BodyIndex, code: str, *, link_schemes: Iterable[str] | None, now: datetime) -> BundleCode:
    """One code as the stored bundle body describes it, checked afresh at the moment of a claim
    (expired by now, a link the kiosk no longer allows, an entry that is not what it was)."""
    item = body.items.get(code)
    if item is None:
        raise BundleError(f"codes: {code} is not in the bundle once")
    if body.expires_at <= now:
        raise BundleError("the bundle's reservation has expired: its codes are the backend's again")
    return _code(item, body.pools, body.shops, link_schemes, now)


def _code(
    item: Any,
    pools: Mapping[str, BundlePool],
    shops: Mapping[str, Shop],
    link_schemes: Iterable[str] | None,
    now: datetime | None,
) -> BundleCode:
    if not isinstance(item, Mapping):
        raise BundleError("expected a JSON object")
    pool = pools.get(item.get("pool_id")) if isinstance(item.get("pool_id"), str) else None
    if pool is None:
        raise BundleError("pool_id: names no pool of the bundle")
    voucher = parse_voucher({**item, "shop": None}, shop=shops.get(pool.shop_id), link_schemes=link_schemes, now=now)
    return BundleCode(pool, voucher)


def _pool(item: Any, where: str) -> BundlePool:
    if not isinstance(item, Mapping):
        raise BundleError(f"{where}: expected a JSON object")
    countries = item.get("countries")
    if not isinstance(countries, list) or not countries or len(countries) > 300:
        raise BundleError(f"{where}.countries: expected a list of ISO 3166 codes")
    visibility = item.get("visibility")
    if visibility not in _VISIBILITIES:
        raise BundleError(f"{where}.visibility: must be private, public or private_public")
    return BundlePool(
        id=_id(item.get("id"), f"{where}.id"),
        shop_id=_id(item.get("shop_id"), f"{where}.shop_id"),
        countries=tuple(_country(country, f"{where}.countries") for country in countries),
        visibility=visibility,
    )


def _mapping(doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = doc.get(name)
    if not isinstance(value, Mapping):
        raise BundleError(f"{name}: expected a JSON object")
    return value


def _list(doc: Mapping[str, Any], name: str) -> list[Any]:
    value = doc.get(name)
    if not isinstance(value, list):
        raise BundleError(f"{name}: expected a list")
    return value


def _id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise BundleError(f"{name}: expected an id (letters, digits, . _ : -)")
    return value


def _country(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _COUNTRY.fullmatch(value):
        raise BundleError(f"{name}: expected an ISO 3166 alpha-2 code")
    return value


def _instant(value: Any, name: str) -> datetime:
    try:
        instant = parse_instant(value, name)
    except VoucherError as exc:
        raise BundleError(str(exc)) from None
    if instant is None:
        raise BundleError(f"{name}: required")
    return instant
