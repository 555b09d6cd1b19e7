"""The demo world: seven shops, two drop points, every kind of pool and voucher the seeds describe,
and packaging codes to scan (``sample_codes``), each with a note saying what it shows at the Danish
drop point.

- Hyggelig Sko (prefix 10HS): an on-demand private pool (DK, DE) served by the stand-in webhook
  (20 % with a redirect link), and a static private fallback pool (DK, 50 kr.).
- Byens Cykler (50BC): an on-demand private pool (DK) whose webhook is down for maintenance (it
  answers 503), so its customers get its static private fallback (DK, 100 kr.).
- Grøn Butik (20GB): a static private_public pool (DK, 15 %) and a static private pool for Germany
  only (10 €).
- Strandkorb Flensburg (60SF): a static private pool in euros (DK, DE: 25 €).
- Papirhuset (30PH): no pools of its own; its customers get the public fallback.
- RE-ZIP Community (40RZ): a public gift pool (DK, a tote bag) with no expiry and no links.
- Nordlys Kaffe (70NK) runs its promotions in Voucherify: an on-demand private pool (DK) served by
  a real ``kiosk shop webhook`` against the stand-in Voucherify (20 % codes ``RZ20-XXXX-XXXX`` with
  a single-use link to the service's ``/redeem``), and a static private pool (DK) that ``kiosk shop
  export-batch`` fills with codes of the same campaign, which offline kiosks hand out
  (``kiosk.sim.voucherify_shop`` starts both; without it the on-demand pool's webhook is the one
  that is down). Its own RE-ZIP token is ``DEMO_SHOP_TOKEN``.
Everything is deterministic, so sample codes and pool ids are the same on every machine.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

from kiosk.core.voucher import parse_voucher
from kiosk.sim.backend_store import BackendStore, new_ulid

__all__ = [
    "seed_demo",
    "sample_codes",
    "sample_code",
    "DEMO_KIOSK_TOKEN",
    "DEMO_ADMIN_TOKEN",
    "DEMO_SHOP_TOKEN",
    "DROP_POINT_DK",
    "DROP_POINT_DE",
    "SHOPS",
    "ON_DEMAND_POOL_ID",
    "FAILING_POOL_ID",
    "VOUCHERIFY_POOL_ID",
    "VOUCHERIFY_STATIC_POOL_ID",
    "KINDS",
]

DEMO_KIOSK_TOKEN = "demo-kiosk-token"
DEMO_ADMIN_TOKEN = "demo-admin-token"
#: Nordlys Kaffe's own RE-ZIP token (its shop service uploads exported batches with it).
DEMO_SHOP_TOKEN = "demo-shop-token-nordlys"
DROP_POINT_DK = "dp-cph-norrebro"
DROP_POINT_DE = "dp-ber-mitte"


@dataclass(frozen=True)
class DemoShop:
    key: str
    name: str
    prefix: str
    description: str
    website: str
    colour: tuple[int, int, int]

    @property
    def id(self) -> str:
        return new_ulid(seed=f"shop:{self.key}")


SHOPS = {
    "sko": DemoShop(
        "sko",
        "Hyggelig Sko",
        "10HS",
        "Handmade shoes from Aarhus, shipped in RE-ZIP packaging.",
        "https://hyggelig-sko.example",
        (176, 68, 52),
    ),
    "gron": DemoShop(
        "gron",
        "Grøn Butik",
        "20GB",
        "Organic groceries and zero-waste goods.",
        "https://gron-butik.example",
        (46, 125, 80),
    ),
    "papir": DemoShop(
        "papir", "Papirhuset", "30PH", "Stationery and books from Odense.", "https://papirhuset.example", (52, 86, 160)
    ),
    "rezip": DemoShop(
        "rezip",
        "RE-ZIP Community",
        "40RZ",
        "Rewards from the RE-ZIP community.",
        "https://re-zip.example",
        (30, 30, 30),
    ),
    "cykler": DemoShop(
        "cykler",
        "Byens Cykler",
        "50BC",
        "Bicycle repairs and parts in Copenhagen.",
        "https://byens-cykler.example",
        (214, 140, 30),
    ),
    "strand": DemoShop(
        "strand",
        "Strandkorb Flensburg",
        "60SF",
        "Beach and outdoor gear from Flensburg.",
        "https://strandkorb-flensburg.example",
        (20, 110, 150),
    ),
    "kaffe": DemoShop(
        "kaffe",
        "Nordlys Kaffe",
        "70NK",
        "Coffee roasted in Aalborg; promotions run in Voucherify.",
        "https://nordlys-kaffe.example",
        (92, 64, 51),
    ),
}
ON_DEMAND_POOL_ID = new_ulid(seed="pool:sko-on-demand")
FAILING_POOL_ID = new_ulid(seed="pool:cykler-on-demand")
VOUCHERIFY_POOL_ID = new_ulid(seed="pool:kaffe-on-demand")
VOUCHERIFY_STATIC_POOL_ID = new_ulid(seed="pool:kaffe-static")

#: What a sample code can show, as ``sample_codes()`` items list it under "shows".
KINDS = (
    "on_demand",
    "webhook_fallback",
    "amount_dkk",
    "amount_eur",
    "percentage",
    "gift",
    "no_expiry",
    "link",
    "no_link",
    "public_fallback",
    "private_public",
    "short_serial",
    "voucherify",
)
#: (shop, serials, what they show, the note): scanned at the Danish drop point, in this order.
_SAMPLES = (
    (
        "sko",
        3,
        ("on_demand", "percentage", "link"),
        "Hyggelig Sko: on-demand voucher from the shop's webhook, 20 % with a redirect link",
    ),
    (
        "cykler",
        2,
        ("webhook_fallback", "amount_dkk", "link"),
        "Byens Cykler: its webhook is down (503), so its static fallback pool answers, 100 kr.",
    ),
    (
        "gron",
        3,
        ("private_public", "percentage", "link"),
        "Grøn Butik: 15 % from its own private_public pool (a public fallback too, after the tote bags)",
    ),
    ("strand", 2, ("amount_eur", "link"), "Strandkorb Flensburg: an amount in EUR, 25 €, from its static pool"),
    (
        "papir",
        3,
        ("public_fallback", "gift", "no_expiry", "no_link"),
        "Papirhuset has no pools: the public fallback, a RE-ZIP Community tote bag (gift, no expiry, no link)",
    ),
    (
        "sko",
        "0042",
        ("short_serial", "on_demand", "percentage", "link"),
        "Hyggelig Sko, a short serial (0042): on-demand voucher from the shop's webhook, 20 % with a link",
    ),
    (
        "kaffe",
        3,
        ("voucherify", "percentage", "link"),
        "Nordlys Kaffe: a Voucherify code, 20 %, from its kiosk shop webhook; the QR link opens its checkout once, "
        "then says the voucher was used (with --offline: a code export-batch put in its static pool)",
    ),
)


def sample_codes() -> list[dict[str, Any]]:
    """Packaging codes to scan in the demo: ``{code, note, shows}``, ``shows`` naming ``KINDS``."""
    codes: list[dict[str, Any]] = []
    for key, serials, shows, note in _SAMPLES:
        shop = SHOPS[key]
        if isinstance(serials, str):  # one short serial
            items = [shop.prefix + serials]
        else:
            items = [shop.prefix + new_ulid(seed=f"item:{key}:{n}") for n in range(1, serials + 1)]
        codes.extend({"code": code, "note": note, "shows": list(shows)} for code in items)
    return codes


def sample_code(kind: str, index: int = 0) -> str:
    """The ``index``-th sample code that shows ``kind`` (one of ``KINDS``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    return str([item["code"] for item in sample_codes() if kind in item["shows"]][index])


def seed_demo(
    store: BackendStore, webhook_url: str, failing_webhook_url: str, voucherify_webhook_url: str | None = None
) -> None:
    """Create the demo world once; on later starts only point the on-demand pools at the webhooks:
    ``webhook_url`` answers vouchers, ``failing_webhook_url`` is the one that is down, and
    ``voucherify_webhook_url`` is Nordlys Kaffe's ``kiosk shop webhook`` (when none runs, its pool
    points at the one that is down)."""
    if store.setting("seeded") == "demo":
        store.set_webhook_url(ON_DEMAND_POOL_ID, webhook_url)
        store.set_webhook_url(FAILING_POOL_ID, failing_webhook_url)
        store.set_webhook_url(VOUCHERIFY_POOL_ID, voucherify_webhook_url or failing_webhook_url)
        return
    store.add_token(DEMO_KIOSK_TOKEN, "kiosk")
    store.add_token(DEMO_ADMIN_TOKEN, "admin")
    store.add_drop_point(DROP_POINT_DK, "Nørrebro drop point", "DK")
    store.add_drop_point(DROP_POINT_DE, "Berlin-Mitte drop point", "DE")
    for shop in SHOPS.values():
        store.upsert_shop(shop.id, shop.name, shop.description, shop.website, _logo(shop))
        store.add_prefix(shop.prefix, shop.id)
    sko, gron, rezip, cykler, strand = (SHOPS[key] for key in ("sko", "gron", "rezip", "cykler", "strand"))
    store.create_pool(
        sko.id,
        "Webshop voucher generation",
        ["DK", "DE"],
        "private",
        "on_demand",
        webhook_url,
        pool_id=ON_DEMAND_POOL_ID,
    )
    _static_pool(
        store,
        sko,
        "Fallback 50 kr.",
        ["DK"],
        "private",
        "HS50",
        25,
        {
            "type": "amount",
            "value": 5000,
            "unit": "DKK",
            "conditions": "Min. køb 200 DKK / Min. purchase 200 DKK",
            "expires_at": "2030-03-15T12:00:00Z",
        },
    )
    store.create_pool(
        cykler.id, "Repair vouchers", ["DK"], "private", "on_demand", failing_webhook_url, pool_id=FAILING_POOL_ID
    )
    _static_pool(
        store,
        cykler,
        "Fallback 100 kr.",
        ["DK"],
        "private",
        "BC100",
        25,
        {
            "type": "amount",
            "value": 10000,
            "unit": "DKK",
            "conditions": "Gælder værkstedsarbejde / Valid on workshop repairs",
            "expires_at": "2030-04-30T22:00:00Z",
        },
    )
    _static_pool(
        store,
        strand,
        "25 € in Denmark and Germany",
        ["DK", "DE"],
        "private",
        "SF25",
        25,
        {
            "type": "amount",
            "value": 2500,
            "unit": "EUR",
            "conditions": "Mindestbestellwert 75 € / Min. køb 75 € / Minimum order 75 €",
            "expires_at": "2030-08-31T22:00:00Z",
        },
    )
    _static_pool(
        store,
        gron,
        "15 % in Denmark",
        ["DK"],
        "private_public",
        "GB15",
        25,
        {
            "type": "percentage",
            "value": 15,
            "unit": "%",
            "conditions": "Valid on full-price items only. One use per customer.",
            "expires_at": "2030-01-01T00:00:00Z",
        },
    )
    _static_pool(
        store,
        gron,
        "10 € in Germany",
        ["DE"],
        "private",
        "GBEU",
        25,
        {
            "type": "amount",
            "value": 1000,
            "unit": "EUR",
            "conditions": "Mindestbestellwert 30 € / Minimum order 30 €",
            "expires_at": "2030-06-30T22:00:00Z",
        },
    )
    _static_pool(
        store,
        rezip,
        "Tote bag",
        ["DK"],
        "public",
        "TOTE",
        25,
        {
            "type": "gift",
            "value": 1,
            "unit": "Tote bag",
            "conditions": "Collect in-store. While supplies last.",
            "expires_at": None,
        },
        links=False,
    )
    kaffe = SHOPS["kaffe"]
    store.add_token(DEMO_SHOP_TOKEN, "shop", kaffe.id)
    store.create_pool(
        kaffe.id,
        "Voucherify codes on demand",
        ["DK"],
        "private",
        "on_demand",
        voucherify_webhook_url or failing_webhook_url,
        pool_id=VOUCHERIFY_POOL_ID,
    )
    store.create_pool(
        kaffe.id,
        "Voucherify codes for offline kiosks",
        ["DK"],
        "private",
        "static",
        None,
        pool_id=VOUCHERIFY_STATIC_POOL_ID,
    )
    store.set_setting("seeded", "demo")


def _static_pool(
    store: BackendStore,
    shop: DemoShop,
    name: str,
    countries: list[str],
    visibility: str,
    code_prefix: str,
    count: int,
    batch: dict[str, object],
    *,
    links: bool = True,
) -> None:
    pool = store.create_pool(
        shop.id, name, countries, visibility, "static", None, pool_id=new_ulid(seed=f"pool:{shop.key}:{code_prefix}")
    )
    checked = parse_voucher({**batch, "code": "BATCH"}).to_json()
    created = store.create_batch(pool.id, checked, batch_id=new_ulid(seed=f"batch:{code_prefix}"))
    codes = []
    for n in range(1, count + 1):
        code = f"{code_prefix}-{new_ulid(seed=f'code:{code_prefix}:{n}')[-8:]}"
        link = f"{shop.website}/redeem?code={code}" if links else None
        codes.append((code, link))
    store.add_codes(created["id"], codes)


def _logo(shop: DemoShop) -> bytes:
    """A small square logo: the shop's initials on its colour."""
    image = Image.new("RGB", (128, 128), shop.colour)
    draw = ImageDraw.Draw(image)
    initials = "".join(word[0] for word in shop.name.split()[:2]).upper()
    draw.ellipse((8, 8, 120, 120), outline=(255, 255, 255), width=6)
    draw.text((64, 64), initials, fill=(255, 255, 255), anchor="mm", font_size=44)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()
