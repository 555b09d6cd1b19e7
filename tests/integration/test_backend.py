"""The stand-in backend as a real process: on-demand pools through the signed shop webhook, static
fallback, visibility and countries, one reward per packaging item, the pools API, persistence."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.signatures import sign_request
from kiosk.sim.demo_seed import (
    DEMO_ADMIN_TOKEN,
    DEMO_KIOSK_TOKEN,
    DROP_POINT_DE,
    DROP_POINT_DK,
    KINDS,
    ON_DEMAND_POOL_ID,
    SHOPS,
    sample_code,
    sample_codes,
)
from kiosk.sim.httpd import LoopbackHTTPServer
from kiosk.sim.world import DemoWorld, demo_world
from tests.conftest import BackendProcess, QuietHandler, run_kiosk

pytestmark = pytest.mark.integration

SKO = [sample_code("on_demand", n) for n in range(3)]  # Hyggelig Sko, on-demand pool
GRON = [sample_code("private_public", n) for n in range(3)]  # Grøn Butik, its own private_public pool
PAPIR = [sample_code("public_fallback", n) for n in range(3)]  # Papirhuset, no pools
KIOSK = {"Authorization": f"Pat {DEMO_KIOSK_TOKEN}", "Accept-Version": "2.0"}
ADMIN = {"Authorization": f"Bearer {DEMO_ADMIN_TOKEN}", "Accept-Version": "2.0"}


def scan(
    backend: BackendProcess | DemoWorld, code: str, drop_point: str = DROP_POINT_DK, key: str | None = None
) -> httpx.Response:
    headers = dict(KIOSK, **({"Idempotency-Key": key} if key else {}))
    body = {"barcode": code, "drop_point_location_id": drop_point, "hardware_id": "test-kiosk"}
    return httpx.post(backend.url + "/me/packaging/scan", json=body, headers=headers, timeout=10)


def voucher_code(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return response.json()["data"]["code"]


def test_on_demand_voucher_comes_from_the_shop_webhook(backend) -> None:
    response = scan(backend, SKO[0])
    data = response.json()["data"]
    assert data["code"].startswith("HS-")
    assert data["link"] == f"https://hyggelig-sko.example/redeem?code={data['code']}"
    assert data["value_data"] == {"type": "percentage", "value": 20, "unit": "%"}
    assert data["shop"]["name"] == "Hyggelig Sko"
    assert httpx.get(backend.webhook_control + "/_sim/state").json()["verified"] == 1


@pytest.mark.parametrize("mode", ["error", "timeout", "invalid"])
def test_webhook_failures_fall_back_to_the_shops_static_pool(backend, mode: str) -> None:
    backend.set_webhook_mode(mode)
    started = time.monotonic()
    code = voucher_code(scan(backend, SKO[1]))
    assert code.startswith("HS50-")
    assert time.monotonic() - started < 2.0  # the webhook timeout is 0.5 s in these tests
    assert code in backend.state()["plucked"]


def test_customers_of_a_shop_without_pools_get_public_vouchers_only(backend) -> None:
    seen = {voucher_code(scan(backend, f"30PH{n:04d}")) for n in range(30)}
    prefixes = {code.split("-")[0] for code in seen}
    assert prefixes == {"GB15", "TOTE"}  # private_public of Grøn Butik, then the public pool
    assert not any(p in ("HS", "HS50", "GBEU") for p in prefixes)  # never anyone's private pool


def test_own_customers_get_private_public_pools_and_countries_filter(backend) -> None:
    assert voucher_code(scan(backend, GRON[0])).startswith("GB15-")  # DK: private_public
    assert voucher_code(scan(backend, GRON[1], DROP_POINT_DE)).startswith("GBEU-")  # DE: private DE pool
    assert voucher_code(scan(backend, SKO[2], DROP_POINT_DE)).startswith("HS-")  # on-demand pool is DK+DE
    nothing = scan(backend, PAPIR[0], DROP_POINT_DE)  # no public pool serves Germany
    assert nothing.status_code == 201 and nothing.json()["data"] is None


def test_one_reward_per_packaging_item_and_short_codes(backend) -> None:
    assert scan(backend, GRON[2]).status_code == 201
    again = scan(backend, GRON[2])
    assert again.status_code == 409
    assert again.json() == {"message": "This packaging has already been returned"}
    assert scan(backend, "20GB0042").status_code == 201


def test_idempotency_key_replays_the_same_answer(backend) -> None:
    first = scan(backend, PAPIR[1], key="k-1")
    second = scan(backend, PAPIR[1], key="k-1")
    assert second.status_code == 201 and second.json() == first.json()
    assert backend.state()["plucked"].count(first.json()["data"]["code"]) == 1


@pytest.mark.parametrize(
    "barcode, status, message",
    [("hello", 400, "not a RE-ZIP"), ("99ZZ0042", 404, "unknown packaging"), ("10HS" + "a" * 26, 400, "not a RE-ZIP")],
)
def test_bad_scans(backend, barcode: str, status: int, message: str) -> None:
    response = scan(backend, barcode)
    assert response.status_code == status and message in response.json()["message"]


def test_unknown_drop_point_and_credentials(backend) -> None:
    assert scan(backend, SKO[0], drop_point="nowhere").status_code == 404
    body = {"barcode": SKO[0], "drop_point_location_id": DROP_POINT_DK, "hardware_id": "x"}
    assert (
        httpx.post(backend.url + "/me/packaging/scan", json=body, headers={"Authorization": "Pat wrong"}).status_code
        == 401
    )


def test_repeated_4xx_earn_a_429_with_retry_after(backend) -> None:
    statuses = [scan(backend, "99ZZ0042").status_code for _ in range(21)]
    assert statuses[:20] == [404] * 20
    last = scan(backend, "99ZZ0042")
    assert last.status_code == 429 and last.headers["Retry-After"] == "60"


def test_pools_batches_and_codes_api(backend) -> None:
    shop = SHOPS["papir"].id
    base = f"{backend.url}/shops/{shop}/vouchers"
    assert httpx.get(base + "/pools/", headers=ADMIN).json() == []
    bad = httpx.post(
        base + "/pools",
        headers=ADMIN,
        json={"name": "x", "countries": ["DK"], "visibility": "private", "pool_type": "on_demand"},
    )
    assert bad.status_code == 400 and "webhook_url" in bad.json()["message"]
    pool = httpx.post(
        base + "/pools", headers=ADMIN, json={"name": "Own", "countries": ["DK"], "visibility": "private"}
    ).json()
    assert pool["pool_type"] == "static" and pool["countries"] == ["DK"]
    assert httpx.get(f"{base}/pools/{pool['id']}", headers=ADMIN).json()["name"] == "Own"
    batch = httpx.post(
        base + "/batches",
        headers=ADMIN,
        json={
            "voucher_pool_id": pool["id"],
            "type": "amount",
            "value": 2500,
            "unit": "EUR",
            "conditions": "Papir only",
            "expires_at": "2027-05-01T00:00:00Z",
        },
    ).json()
    added = httpx.post(
        base,
        headers=ADMIN,
        json={
            "voucher_batch_id": batch["id"],
            "codes": [{"code": "PH-1", "link": "https://papirhuset.example/r?c=PH-1"}, {"code": "PH-2"}],
        },
    )
    assert added.json() == {"added": 2}
    bad_code = httpx.post(base, headers=ADMIN, json={"voucher_batch_id": batch["id"], "codes": [{"code": "bad code"}]})
    assert bad_code.status_code == 400 and "codes[0].code" in bad_code.json()["message"]
    # Now Papirhuset's own customers get its private pool first, and the code is plucked.
    assert voucher_code(scan(backend, PAPIR[2])) == "PH-1"
    codes = {c["code"]: c for c in httpx.get(base, headers=ADMIN).json()}
    assert codes["PH-1"]["plucked_at"] and codes["PH-2"]["plucked_at"] is None
    assert httpx.delete(f"{base}/pools/{pool['id']}", headers=ADMIN).status_code == 204
    assert httpx.get(f"{base}/pools/{pool['id']}", headers=ADMIN).status_code == 404


def test_batches_are_refused_on_on_demand_pools_and_tokens_are_scoped(backend) -> None:
    shop = SHOPS["sko"].id
    refused = httpx.post(
        f"{backend.url}/shops/{shop}/vouchers/batches",
        headers=ADMIN,
        json={"voucher_pool_id": ON_DEMAND_POOL_ID, "type": "gift", "value": 1, "unit": "Sock", "conditions": ""},
    )
    assert refused.status_code == 400 and "on-demand" in refused.json()["message"]
    assert httpx.get(f"{backend.url}/shops/{shop}/vouchers/pools", headers=KIOSK).status_code == 403


def test_logo_and_jwks(backend) -> None:
    logo = httpx.get(f"{backend.url}/shops/{SHOPS['sko'].id}/logo")
    assert logo.headers["content-type"] == "image/png" and logo.content.startswith(b"\x89PNG")
    keys = httpx.get(backend.ready["jwks"]).json()["keys"]
    assert keys[0]["crv"] == "P-384" and keys[0]["kid"].startswith("key-")


def _signing_key(backend: BackendProcess) -> ec.EllipticCurvePrivateKey:
    pem = Path(str(backend.db) + ".signing-key.pem")
    assert pem.stat().st_mode & 0o777 == 0o600
    key = serialization.load_pem_private_key(pem.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def test_shop_webhook_rejects_tampered_signatures(backend) -> None:
    url = backend.ready["webhook"]
    kid = httpx.get(backend.ready["jwks"]).json()["keys"][0]["kid"]
    key = _signing_key(backend)
    body = json.dumps({"voucher_pool_id": ON_DEMAND_POOL_ID})
    base = {"Content-Type": "application/json", "Webhook-Version": "1"}

    def post(headers: dict) -> int:
        return httpx.post(url, content=body, headers=headers, timeout=5).status_code

    good = {**base, **sign_request(key, kid, "POST", url, base, created=int(time.time()))}
    assert post(good) == 200
    sig = good["Signature"]
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    assert post({**good, "Signature": flipped}) == 401
    other_uri = sign_request(key, kid, "POST", url.replace("/rezip/voucher", "/other"), base, created=int(time.time()))
    assert post({**base, **other_uri}) == 401
    stranger = ec.generate_private_key(ec.SECP384R1())
    assert post({**base, **sign_request(stranger, kid, "POST", url, base, created=int(time.time()))}) == 401
    assert post({**base, **sign_request(key, kid, "POST", url, base, created=int(time.time()) - 3600)}) == 401
    assert post(base) == 401
    state = httpx.get(backend.webhook_control + "/_sim/state").json()
    assert state["rejected"] == 5 and state["verified"] == 1


def test_restart_on_the_same_database_keeps_everything(tmp_path: Path) -> None:
    db = tmp_path / "b.sqlite"
    first = BackendProcess(db, "--seed", "demo")
    try:
        issued = voucher_code(scan(first, GRON[0]))
    finally:
        first.stop()
    second = BackendProcess(db, "--seed", "demo")
    try:
        assert scan(second, GRON[0]).status_code == 409
        assert issued in second.state()["plucked"]
        assert voucher_code(scan(second, SKO[0])).startswith("HS-")  # webhook re-pointed after restart
    finally:
        second.stop()


def test_the_database_and_its_journal_files_are_private(tmp_path: Path) -> None:
    with demo_world(tmp_path) as world:
        assert voucher_code(scan(world, GRON[0])).startswith("GB15-")
        files = sorted(tmp_path.glob("backend.sqlite*"))
        assert {f.name for f in files} >= {"backend.sqlite", "backend.sqlite-wal", "backend.sqlite-shm"}
        assert {f.name: f.stat().st_mode & 0o777 for f in files} == {f.name: 0o600 for f in files}


def test_a_scan_failing_inside_the_stand_in_does_not_hold_its_key(tmp_path: Path, monkeypatch) -> None:
    with demo_world(tmp_path) as world:

        def broken(*args: object) -> None:
            raise RuntimeError("a bug in the stand-in")

        monkeypatch.setattr(world.backend, "_reward", broken)
        assert scan(world, GRON[0], key="k-1").status_code == 500
        monkeypatch.undo()
        retried = scan(world, GRON[1], key="k-1")  # the retry is answered, not "in progress"
        assert retried.status_code == 201 and voucher_code(retried).startswith("GB15-")


def test_kiosk_scan_command_against_the_backend(backend, tmp_path: Path) -> None:
    config = str(tmp_path / "kiosk.toml")
    result = run_kiosk("scan", SKO[0], "--config", config, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["status"] == "issued" and doc["source"] == "online"
    assert doc["voucher"]["code"].startswith("HS-") and doc["voucher"]["shop"]["name"] == "Hyggelig Sko"
    assert set(doc["ms"]) == {"issue", "total"}
    again = run_kiosk("scan", SKO[0], "--config", config, "--json")
    assert again.returncode == 1 and json.loads(again.stdout)["status"] == "already_returned"


def test_an_invalid_code_never_reaches_the_backend(backend, tmp_path: Path) -> None:
    before = len(backend.state()["scans"])
    result = run_kiosk("scan", "5701234567899", "--config", str(tmp_path / "kiosk.toml"), "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["status"] == "invalid"
    assert len(backend.state()["scans"]) == before


def test_a_client_hanging_up_is_no_traceback_but_a_failure_is(capsys) -> None:
    server = LoopbackHTTPServer(("127.0.0.1", 0), QuietHandler)
    try:
        for problem in (ConnectionResetError(104, "Connection reset by peer"), ValueError("a real bug")):
            try:
                raise problem
            except Exception:
                server.handle_error(None, ("127.0.0.1", 1))
    finally:
        server.server_close()
    err = capsys.readouterr().err
    assert "ValueError: a real bug" in err and "ConnectionResetError" not in err


# --- what the stand-in refuses from shops (the seeds rule it out) -----------------------------------


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoWorld]:
    """One stand-in (in this process) for the tests below, which add pools nobody else looks at."""
    with demo_world(tmp_path_factory.mktemp("shared")) as world:
        yield world


_SERIALS = itertools.count(1000)


def fresh(shop: str) -> str:
    """A packaging code of the shop nobody scanned yet (a short serial)."""
    return f"{SHOPS[shop].prefix}{next(_SERIALS)}"


ON_DEMAND = {"name": "Hook", "countries": ["DK"], "visibility": "private", "pool_type": "on_demand"}
STATIC = {"name": "Static", "countries": ["DK"], "visibility": "private"}


@pytest.mark.parametrize(
    "pool, message",
    [
        ({**ON_DEMAND, "webhook_url": "http://shop.example/rezip/voucher"}, "webhook_url: must be https"),
        ({**ON_DEMAND, "webhook_url": "http://10.0.0.5/rezip/voucher"}, "webhook_url: must be https"),
        ({**ON_DEMAND, "webhook_url": "http://127.0.0.1.shop.example/hook"}, "webhook_url: must be https"),
        ({**ON_DEMAND, "webhook_url": "ftp://shop.example/hook"}, "webhook_url: must be an https URL with a host"),
        ({**ON_DEMAND, "webhook_url": "https://"}, "webhook_url: must be an https URL with a host"),
        ({**ON_DEMAND, "webhook_url": "https:///hook"}, "webhook_url: must be an https URL with a host"),
        ({**ON_DEMAND, "webhook_url": "https://shop example/hook"}, "webhook_url: is not a well-formed URL"),
        ({**ON_DEMAND, "webhook_url": "https://shop.example:99999/hook"}, "webhook_url: is not a well-formed URL"),
        ({**ON_DEMAND, "webhook_url": "https://shøp.example/hook"}, "webhook_url: is not a well-formed URL"),
        ({**ON_DEMAND, "webhook_url": "https://[::1/hook"}, "webhook_url: is not a well-formed URL"),
        ({**ON_DEMAND, "webhook_url": "https://user:pw@shop.example/hook"}, "webhook_url: must not carry"),
        ({**ON_DEMAND, "webhook_url": 42}, "webhook_url: required"),
        (ON_DEMAND, "webhook_url: required"),
        ({**STATIC, "webhook_url": "https://shop.example/hook"}, "webhook_url: only an on_demand pool has one"),
        ({**STATIC, "countries": ["XX"]}, "countries: 'XX' is not an ISO 3166"),
        ({**STATIC, "countries": ["EU"]}, "countries: 'EU' is not an ISO 3166"),
        ({**STATIC, "countries": ["dk"]}, "countries: 'dk' is not an ISO 3166"),
        ({**STATIC, "countries": ["DK", "DK"]}, "countries: each country once"),
        ({**STATIC, "countries": []}, "countries: must be a non-empty list"),
        ({**STATIC, "countries": "DK"}, "countries: must be a non-empty list"),
        ({**STATIC, "name": "   "}, "name: required"),
        ({**STATIC, "name": 7}, "name: required"),
        ({**STATIC, "name": "x" * 201}, "name: at most 200 characters"),
        ({**STATIC, "name": "bell\x07"}, "name: at most 200 characters, without control characters"),
        ({**STATIC, "visibility": "secret"}, "visibility: must be private, public or private_public"),
        ({**STATIC, "pool_type": "dynamic"}, "pool_type: must be static or on_demand"),
    ],
)
def test_pools_the_seeds_rule_out_are_refused(shared, pool: dict, message: str) -> None:
    response = httpx.post(f"{shared.url}/shops/{SHOPS['papir'].id}/vouchers/pools", headers=ADMIN, json=pool)
    assert response.status_code == 400 and response.json()["message"].startswith(message), response.text


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://[::1]:9/hook",
        "http://localhost/hook",
        "https://shop.example/rezip/voucher?pool=1",
        "https://xn--shp-0na.example/hook",
    ],
)
def test_on_demand_pools_take_https_or_a_loopback_webhook(shared, url: str) -> None:
    response = httpx.post(
        f"{shared.url}/shops/{SHOPS['papir'].id}/vouchers/pools", headers=ADMIN, json={**ON_DEMAND, "webhook_url": url}
    )
    assert response.status_code == 201 and response.json()["webhook_url"] == url


BATCH = {
    "type": "amount",
    "value": 2500,
    "unit": "DKK",
    "conditions": "Papir only",
    "expires_at": "2030-05-01T00:00:00Z",
}


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"unit": "XYZ"}, "unit: must be an ISO 4217 currency code"),
        ({"unit": "dkk"}, "unit: must be an ISO 4217 currency code"),
        ({"unit": "XAU"}, "unit: must be an ISO 4217 currency code"),
        ({"conditions": None}, "conditions: is required"),
        ({"conditions": 5}, "conditions: is required"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at: the voucher has expired"),
        ({"expires_at": "2090-06-01T00:00:00Z"}, "expires_at: lies more than 10 years ahead"),
        ({"expires_at": "9999-06-01T00:00:00Z"}, "expires_at: must lie between the years 2000 and 2199"),
        ({"expires_at": "next spring"}, "expires_at: is not an ISO 8601 timestamp"),
        ({"type": "percentage", "unit": "%", "value": 150}, "value: a percentage cannot exceed 100"),
        ({"value": "25"}, "value: must be an integer"),
        ({"type": "discount"}, "type: must be amount, percentage or gift"),
    ],
)
def test_batches_the_seeds_rule_out_are_refused(shared, fields: dict, message: str) -> None:
    shop = SHOPS["papir"].id
    pool = httpx.post(f"{shared.url}/shops/{shop}/vouchers/pools", headers=ADMIN, json=STATIC).json()
    batch = {"voucher_pool_id": pool["id"], **BATCH, **fields}
    if fields.get("conditions", "") is None:
        del batch["conditions"]  # missing altogether, as well as null below
    response = httpx.post(f"{shared.url}/shops/{shop}/vouchers/batches", headers=ADMIN, json=batch)
    assert response.status_code == 400 and response.json()["message"].startswith(message), response.text
    if "conditions" in fields:
        null = httpx.post(
            f"{shared.url}/shops/{shop}/vouchers/batches",
            headers=ADMIN,
            json={**batch, "conditions": fields["conditions"]},
        )
        assert null.status_code == 400 and null.json()["message"].startswith(message)


@pytest.mark.parametrize(
    "code, message",
    [
        ({"code": "bad code"}, "codes[1].code: must be 1-64 letters"),
        ({"code": "PH-9", "link": "javascript:alert(1)"}, "codes[1].link: a javascript: link redeems nothing"),
        ({"code": "PH-9", "link": "http://papirhuset.example/r"}, "codes[1].link: a http: link redeems nothing"),
        ({"code": "PH-9", "link": "data:text/html,x"}, "codes[1].link: a data: link redeems nothing"),
        ({"code": "PH-9", "link": "https://"}, "codes[1].link: https link without a host"),
        (
            {"code": "PH-9", "link": "https://papirhuset.example/r c"},
            "codes[1].link: contains spaces or control characters",
        ),
        ({"code": "PH-9", "link": "no scheme"}, "codes[1].link: contains spaces or control characters"),
        ({"code": "OWN"}, "codes[1].code: already in another batch of this shop"),
    ],
)
def test_codes_the_seeds_rule_out_are_refused(shared, code: dict, message: str) -> None:
    shop, own = SHOPS["papir"].id, f"PH-OWN-{next(_SERIALS)}"
    code = {**code, "code": own} if code["code"] == "OWN" else code
    pool = httpx.post(f"{shared.url}/shops/{shop}/vouchers/pools", headers=ADMIN, json=STATIC).json()
    first = httpx.post(
        f"{shared.url}/shops/{shop}/vouchers/batches", headers=ADMIN, json={"voucher_pool_id": pool["id"], **BATCH}
    ).json()
    second = httpx.post(
        f"{shared.url}/shops/{shop}/vouchers/batches",
        headers=ADMIN,
        json={"voucher_pool_id": pool["id"], **BATCH, "value": 5000},
    ).json()
    assert httpx.post(
        f"{shared.url}/shops/{shop}/vouchers",
        headers=ADMIN,
        json={"voucher_batch_id": first["id"], "codes": [{"code": own}]},
    ).json() == {"added": 1}
    response = httpx.post(
        f"{shared.url}/shops/{shop}/vouchers",
        headers=ADMIN,
        json={"voucher_batch_id": second["id"], "codes": [{"code": "PH-8"}, code]},
    )
    assert response.status_code == 400 and response.json()["message"].startswith(message), response.text
    assert "PH-8" not in {c["code"] for c in httpx.get(f"{shared.url}/shops/{shop}/vouchers", headers=ADMIN).json()}
    again = httpx.post(
        f"{shared.url}/shops/{shop}/vouchers",
        headers=ADMIN,
        json={"voucher_batch_id": first["id"], "codes": [{"code": own}]},
    )
    assert again.json() == {"added": 0}  # uploading the same code to the same batch again is a retry


def test_an_app_scheme_link_is_a_redemption_link(backend) -> None:
    shop = SHOPS["papir"].id
    pool = httpx.post(f"{backend.url}/shops/{shop}/vouchers/pools", headers=ADMIN, json=STATIC).json()
    batch = httpx.post(
        f"{backend.url}/shops/{shop}/vouchers/batches",
        headers=ADMIN,
        json={"voucher_pool_id": pool["id"], **BATCH, "expires_at": None},
    ).json()
    added = httpx.post(
        f"{backend.url}/shops/{shop}/vouchers",
        headers=ADMIN,
        json={
            "voucher_batch_id": batch["id"],
            "codes": [{"code": "PH-APP", "link": "papirhuset://redeem?code=PH-APP"}],
        },
    )
    assert added.json() == {"added": 1}
    assert voucher_code(scan(backend, PAPIR[0])) == "PH-APP"


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "\\ud800", "countries": ["DK"], "visibility": "private"}',
        b"[" * 100_000,
        b'{"name": NaN}',
        b"\xff\xfe",
    ],
)
def test_bodies_that_are_not_json_text_are_a_400(shared, body: bytes) -> None:
    response = httpx.post(f"{shared.url}/shops/{SHOPS['papir'].id}/vouchers/pools", headers=ADMIN, content=body)
    assert response.status_code == 400 and response.json() == {"message": "body is not JSON"}
    hostile_scan = httpx.post(shared.url + "/me/packaging/scan", headers=KIOSK, content=body)
    assert hostile_scan.status_code == 400
    assert voucher_code(scan(shared, fresh("gron"))).startswith("GB15-")  # the next scan is served


# --- the demo world: each sample code shows what its note says ---------------------------------------


def test_every_sample_code_shows_what_its_note_says(backend) -> None:
    by_prefix = {shop.prefix: shop for shop in SHOPS.values()}
    by_name = {shop.name: shop for shop in SHOPS.values()}
    shown: set[str] = set()
    for item in sample_codes():
        response = scan(backend, item["code"])
        assert response.status_code == 201, item
        data = response.json()["data"]
        packaging_shop, voucher_shop = by_prefix[item["code"][:4]], by_name[data["shop"]["name"]]
        assert packaging_shop.name in item["note"]
        pool_of_code = {
            c["code"]: c["voucher_pool_id"]
            for c in httpx.get(f"{backend.url}/shops/{voucher_shop.id}/vouchers", headers=ADMIN).json()
        }
        pools = {
            p["id"]: p for p in httpx.get(f"{backend.url}/shops/{voucher_shop.id}/vouchers/pools", headers=ADMIN).json()
        }
        pool = pools.get(pool_of_code.get(data["code"]))  # None: the voucher came from a webhook
        kind, unit = data["value_data"]["type"], data["value_data"]["unit"]
        facts = {
            "on_demand": pool is None and data["code"].startswith("HS-") and voucher_shop is packaging_shop,
            "webhook_fallback": pool is not None
            and pool["visibility"] == "private"
            and any(p["pool_type"] == "on_demand" for p in pools.values())
            and voucher_shop is packaging_shop,
            "amount_dkk": (kind, unit) == ("amount", "DKK"),
            "amount_eur": (kind, unit) == ("amount", "EUR"),
            "percentage": kind == "percentage" and str(data["value_data"]["value"]) in item["note"],
            "gift": kind == "gift" and unit.lower() in item["note"].lower(),
            "no_expiry": data["expires_at"] is None,
            "link": data["link"] is not None,
            "no_link": data["link"] is None,
            "public_fallback": pool is not None
            and pool["visibility"] == "public"
            and voucher_shop is not packaging_shop
            and httpx.get(f"{backend.url}/shops/{packaging_shop.id}/vouchers/pools", headers=ADMIN).json() == [],
            "private_public": pool is not None
            and pool["visibility"] == "private_public"
            and voucher_shop is packaging_shop,
            "short_serial": len(item["code"]) <= 9,
            # Nordlys Kaffe's kiosk shop webhook published it in Voucherify (the stand-in's RZ20- campaign),
            # with the link to that service's single-use redeem page
            "voucherify": pool is None
            and voucher_shop is packaging_shop
            and data["code"].startswith("RZ20-")
            and data["link"]
            == backend.ready["shop_webhook"].removesuffix("/rezip/voucher") + f"/redeem?code={data['code']}",
        }
        for kind_shown in item["shows"]:
            assert facts[kind_shown], (item, kind_shown, data)
        shown.update(item["shows"])
        if "webhook_fallback" in item["shows"]:
            assert backend.state()["webhook_failures"][-1]["reason"] == "HTTP 503"
    assert shown == set(KINDS)  # every kind the seeds describe, at the Danish drop point
