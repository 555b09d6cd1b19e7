"""``kiosk shop export-batch`` against the demo world (the stand-in RE-ZIP with Nordlys Kaffe's static
pool, the stand-in Voucherify, every Voucherify request and answer validated against the spec): a run
exported twice, or killed half-way and run again, leaves each code once at RE-ZIP and publishes no
code twice; Voucherify's Retry-After is waited out; a pool that cannot take codes stops the export
before anything is published."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kiosk.shop.config import ShopConfig
from kiosk.shop.export import ExportError, ExportResult, export_batch, export_source_id
from kiosk.sim.demo_seed import DEMO_ADMIN_TOKEN, SHOPS, VOUCHERIFY_POOL_ID, VOUCHERIFY_STATIC_POOL_ID
from kiosk.sim.httpd import JsonServer, Reply, Request
from kiosk.sim.voucherify_shop import EXPORT_COUNT
from kiosk.sim.world import DemoWorld, demo_world
from tests.conftest import KIOSK, REPO
from tests.integration.shop_harness import spec_transports

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": f"Pat {DEMO_ADMIN_TOKEN}", "Accept-Version": "2.0"}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[DemoWorld, list[str]]]:
    problems: list[str] = []
    with demo_world(tmp_path, voucherify_transport=spec_transports(problems)) as made:
        yield made, problems
    assert problems == [], "\n".join(problems)


def static_codes(world: DemoWorld) -> list[dict]:
    """Nordlys Kaffe's codes at RE-ZIP (its static pool's, as RE-ZIP lists them)."""
    codes = httpx.get(f"{world.url}/shops/{SHOPS['kaffe'].id}/vouchers", headers=ADMIN).json()
    return [c for c in codes if c["voucher_pool_id"] == VOUCHERIFY_STATIC_POOL_ID]


def publications(world: DemoWorld, run_id: str) -> list[str]:
    assert world.shop is not None
    rows = world.shop.voucherify.store.read(
        "SELECT source_id FROM publications WHERE source_id LIKE ?", f"rezip-export-{run_id}-%"
    )
    return [row["source_id"] for row in rows]


def export(
    world: DemoWorld,
    count: int,
    problems: list[str],
    *,
    config: ShopConfig | None = None,
    lines: list[str] | None = None,
    **options: str,
) -> ExportResult:
    assert world.shop is not None
    shop = world.shop
    return asyncio.run(
        export_batch(
            config or shop.config,
            shop.service.secrets,
            count,
            voucherify_transport=spec_transports(problems),
            progress=(lines if lines is not None else []).append,
            **options,
        )
    )


def test_the_demo_world_exported_its_batch_with_single_use_links(world) -> None:  # type: ignore[no-untyped-def]
    made, _ = world
    codes = static_codes(made)
    assert made.shop.export.added == EXPORT_COUNT == len(codes) == len({c["code"] for c in codes})
    for item in codes:
        assert item["code"].startswith("RZ20-") and item["link"] == made.shop.link_for(item["code"])
        assert made.shop.voucherify.store.voucher(item["code"])["quantity"] == 1  # a real, single-use code


def test_an_export_run_twice_leaves_each_code_once(world) -> None:  # type: ignore[no-untyped-def]
    made, problems = world
    lines: list[str] = []
    first = export(made, 30, problems, run_id="twice", lines=lines)
    assert (first.added, first.skipped, first.resumed, len(first.batches)) == (30, 0, False, 1)
    assert lines[0] == f"starting export run twice: 30 codes for pool {VOUCHERIFY_STATIC_POOL_ID}"
    assert "published 30 of 30 codes" in lines and lines[-1] == f"uploaded 30 of 30 codes to batch {first.batches[0]}"
    again = export(made, 30, problems, run_id="twice")
    assert (again.added, again.resumed, again.batches) == (0, True, first.batches)
    codes = [c["code"] for c in static_codes(made)]
    assert len(codes) == len(set(codes)) == EXPORT_COUNT + 30
    assert sorted(publications(made, "twice")) == [export_source_id("twice", i) for i in range(30)]
    with pytest.raises(ExportError, match="run twice was started with --count 30"):
        export(made, 31, problems, run_id="twice")


def test_an_export_killed_half_way_resumes_its_run(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    made, _ = world
    made.shop.voucherify.delay_s = 0.02  # slow enough to be killed half-way
    command = [*KIOSK, "shop", "export-batch", "--config", str(made.shop.config.source), "--count", "160"]
    process = subprocess.Popen(command, cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stderr is not None
    started = process.stderr.readline()
    run_id = started.split()[3].rstrip(":")
    while "published 64 of 160" not in process.stderr.readline():
        pass
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert len(static_codes(made)) == EXPORT_COUNT  # nothing uploaded yet
    half = len(publications(made, run_id))
    assert 64 <= half < 160
    made.shop.voucherify.delay_s = 0
    rerun = subprocess.run(command, cwd=REPO, text=True, capture_output=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stderr.startswith(f"resuming export run {run_id}: 160 codes")
    assert rerun.stdout.endswith(f"160 new at RE-ZIP (run {run_id}, resumed)\n")
    codes = [c["code"] for c in static_codes(made)]
    assert len(codes) == len(set(codes)) == EXPORT_COUNT + 160
    assert len(publications(made, run_id)) == 160  # the first 64 and more were not published again
    assert made.shop.voucherify.store.read("SELECT COUNT(*) AS n FROM vouchers")[0]["n"] == EXPORT_COUNT + 160


def test_voucherifys_retry_after_is_waited_out(world) -> None:  # type: ignore[no-untyped-def]
    made, problems = world
    limited = _OnceRateLimited(made.shop.config.voucherify.url)
    config = dataclasses.replace(
        made.shop.config, voucherify=dataclasses.replace(made.shop.config.voucherify, url=limited.url)
    )
    lines: list[str] = []
    result = export(made, 5, problems, config=config, run_id="patient", lines=lines)
    limited.server.stop()
    assert result.added == 5 and "Voucherify's rate limit: waiting 1 s" in lines
    assert limited.refused == 1 and len(publications(made, "patient")) == 5


@pytest.mark.parametrize(
    "pool_id, message",
    [(VOUCHERIFY_POOL_ID, "is on_demand, not static"), ("no-such-pool", "RE-ZIP has no pool no-such-pool")],
)
def test_a_pool_that_takes_no_codes_stops_the_export_first(world, pool_id: str, message: str) -> None:  # type: ignore[no-untyped-def]
    made, problems = world
    config = dataclasses.replace(
        made.shop.config, rezip=dataclasses.replace(made.shop.config.rezip, static_pool_id=pool_id)
    )
    with pytest.raises(ExportError, match=message) as refused:
        export(made, 5, problems, config=config, run_id="nowhere")
    assert refused.value.exit_code == 2 and publications(made, "nowhere") == []


class _OnceRateLimited:
    """Voucherify, except that its first publication is answered 429 with ``Retry-After: 1``."""

    def __init__(self, target: str) -> None:
        self.target, self.refused = target, 0
        self.server = JsonServer([(method, r"/.*", self._relay) for method in ("GET", "POST")]).start()
        self.url = self.server.url

    def _relay(self, request: Request) -> Reply:
        if request.method == "POST" and request.path == "/v1/publications" and not self.refused:
            self.refused += 1
            return Reply(
                429,
                b'{"code": 429, "key": "too_many_requests", "message": "Too many requests", '
                b'"details": "slow down", "request_id": "v-1"}',
                headers={"Retry-After": "1"},
            )
        kept = {k: v for k, v in request.headers.items() if k in ("x-app-id", "x-app-token", "content-type")}
        answer = httpx.request(
            request.method,
            self.target + request.path,
            headers=kept,
            content=request.body,
            params={k: v[0] for k, v in request.query.items()},
        )
        return Reply(answer.status_code, answer.content)
