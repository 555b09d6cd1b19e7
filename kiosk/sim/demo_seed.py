"""The demo world: four shops, two drop points, every kind of pool, and packaging codes to scan.

- Hyggelig Sko (prefix 10HS): an on-demand private pool (DK, DE) served by the stand-in webhook, and
  a static private fallback pool (DK).
- Grøn Butik (20GB): a static private_public pool (DK) and a static private pool for Germany only.
- Papirhuset (30PH): no pools of its own; its customers get public vouchers.
- RE-ZIP Community: a public gift pool (DK) with codes that carry no link.
Everything is deterministic, so sample codes and pool ids are the same on every machine.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageDraw

from kiosk.core.voucher import parse_voucher
from kiosk.sim.backend_store import BackendStore, new_ulid

__all__ = ["seed_demo", "sample_codes", "DEMO_KIOSK_TOKEN", "DEMO_ADMIN_TOKEN", "DROP_POINT_DK",
           "DROP_POINT_DE", "SHOPS", "ON_DEMAND_POOL_ID"]  # fmt: skip

DEMO_KIOSK_TOKEN = "demo-kiosk-token"
DEMO_ADMIN_TOKEN = "demo-admin-token"
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
    "sko": DemoShop("sko", "Hyggelig Sko", "10HS", "Handmade shoes from Aarhus, shipped in RE-ZIP packaging.",
                    "https://hyggelig-sko.example", (176, 68, 52)),
    "gron": DemoShop("gron", "Grøn Butik", "20GB", "Organic groceries and zero-waste goods.",
                     "https://gron-butik.example", (46, 125, 80)),
    "papir": DemoShop("papir", "Papirhuset", "30PH", "Stationery and books from Odense.",
                      "https://papirhuset.example", (52, 86, 160)),
    "rezip": DemoShop("rezip", "RE-ZIP Community", "40RZ", "Rewards from the RE-ZIP community.",
                      "https://re-zip.example", (30, 30, 30)),
}  # fmt: skip
ON_DEMAND_POOL_ID = new_ulid(seed="pool:sko-on-demand")


def sample_codes() -> list[dict[str, str]]:
    """Packaging codes to scan in the demo, with what each shows off."""
    codes = []
    for key, note in (
        ("sko", "Hyggelig Sko: on-demand voucher from the shop's webhook"),
        ("gron", "Grøn Butik: 15 % from its static private_public pool"),
        ("papir", "Papirhuset (no pools): public fallback voucher"),
    ):
        shop = SHOPS[key]
        for n in range(1, 4):
            codes.append({"code": shop.prefix + new_ulid(seed=f"item:{key}:{n}"), "note": note})
    codes.append({"code": SHOPS["sko"].prefix + "0042", "note": "Hyggelig Sko: short serial"})
    return codes


def seed_demo(store: BackendStore, webhook_url: str) -> None:
    """Create the demo world once; on later starts only point the on-demand pool at ``webhook_url``."""
    if store.setting("seeded") == "demo":
        store.set_webhook_url(ON_DEMAND_POOL_ID, webhook_url)
        return
    store.add_token(DEMO_KIOSK_TOKEN, "kiosk")
    store.add_token(DEMO_ADMIN_TOKEN, "admin")
    store.add_drop_point(DROP_POINT_DK, "Nørrebro drop point", "DK")
    store.add_drop_point(DROP_POINT_DE, "Berlin-Mitte drop point", "DE")
    for shop in SHOPS.values():
        store.upsert_shop(shop.id, shop.name, shop.description, shop.website, _logo(shop))
        store.add_prefix(shop.prefix, shop.id)
    sko, gron, rezip = SHOPS["sko"], SHOPS["gron"], SHOPS["rezip"]
    store.create_pool(sko.id, "Webshop voucher generation", ["DK", "DE"], "private", "on_demand",
                      webhook_url, pool_id=ON_DEMAND_POOL_ID)  # fmt: skip
    _static_pool(store, sko, "Fallback 50 kr.", ["DK"], "private", "HS50", 25, {
        "type": "amount", "value": 5000, "unit": "DKK",
        "conditions": "Min. køb 200 DKK / Min. purchase 200 DKK", "expires_at": "2027-03-15T12:00:00Z",
    })  # fmt: skip
    _static_pool(store, gron, "15 % in Denmark", ["DK"], "private_public", "GB15", 25, {
        "type": "percentage", "value": 15, "unit": "%",
        "conditions": "Valid on full-price items only. One use per customer.",
        "expires_at": "2027-01-01T00:00:00Z",
    })  # fmt: skip
    _static_pool(store, gron, "10 € in Germany", ["DE"], "private", "GBEU", 25, {
        "type": "amount", "value": 1000, "unit": "EUR",
        "conditions": "Mindestbestellwert 30 € / Minimum order 30 €", "expires_at": "2027-06-30T22:00:00Z",
    })  # fmt: skip
    _static_pool(store, rezip, "Tote bag", ["DK"], "public", "TOTE", 25, {
        "type": "gift", "value": 1, "unit": "Tote bag",
        "conditions": "Collect in-store. While supplies last.", "expires_at": None,
    }, links=False)  # fmt: skip
    store.set_setting("seeded", "demo")


def _static_pool(store: BackendStore, shop: DemoShop, name: str, countries: list[str],
                 visibility: str, code_prefix: str, count: int, batch: dict[str, object],
                 *, links: bool = True) -> None:  # fmt: skip
    pool = store.create_pool(shop.id, name, countries, visibility, "static", None,
                             pool_id=new_ulid(seed=f"pool:{shop.key}:{code_prefix}"))  # fmt: skip
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
