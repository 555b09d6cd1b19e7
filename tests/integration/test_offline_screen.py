"""What a customer sees of offline issuance: the offline banner follows the backend, an offline
voucher shows its shop's logo (cached with the pools, the backend being away), a kiosk that never
reached its backend says so, and the demo's terminal shows the customers' view, not the log."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from kiosk.config import load_config
from kiosk.runtime import open_kiosk
from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK, sample_code
from kiosk.sim.kiosk_config import write_kiosk_config
from tests.conftest import run_kiosk
from tests.integration.hostile import KioskHarness, fresh_code

pytestmark = pytest.mark.integration


def test_the_offline_banner_follows_the_backend(tmp_path: Path) -> None:
    with KioskHarness(tmp_path) as harness:
        assert harness.scan(fresh_code()).source == "online" and harness.frame()["offline"] is False
        harness.proxy.down = True
        assert harness.scan(fresh_code("gron")).source == "offline"
        harness.quiet(1.5)  # the offline sync's next round fails too
        assert harness.frame()["offline"] is True and harness.frame()["state"] == "showing_voucher"
        harness.proxy.down = False
        assert harness.scan(fresh_code()).source == "online"
        harness.quiet(0.2)
        assert harness.frame()["offline"] is False


def test_an_offline_voucher_shows_the_logo_cached_with_the_pools(tmp_path: Path) -> None:
    with KioskHarness(tmp_path) as harness:
        logos = harness.kiosk.screen.logos  # type: ignore[union-attr]
        cached = list((harness.config.kiosk.data_dir / "logos").glob("*.img"))
        assert cached, "the top-up fetched no logo"
        logos._logos.clear()  # a restarted kiosk: only the disk cache is left
        harness.world.server.stop()  # and the backend that serves the logos is gone
        report = harness.scan(fresh_code("gron"))
        assert report.status == "issued" and report.source == "offline"
        frame = harness.frame()
        assert frame["voucher"]["code"] == report.voucher.code and frame["voucher"]["logo"].startswith("/logo/")


def test_a_kiosk_that_never_reached_its_backend_says_so(tmp_path: Path) -> None:
    config = load_config(
        write_kiosk_config(
            tmp_path / "kiosk.toml",
            backend_url="http://127.0.0.1:9",
            token=DEMO_KIOSK_TOKEN,
            drop_point=DROP_POINT_DK,
            screen_type="none",
        )
    )
    config = dataclasses.replace(config, backend=dataclasses.replace(config.backend, deadline_s=0.5))

    async def scan() -> object:
        reports: asyncio.Queue = asyncio.Queue()
        async with open_kiosk(
            config, with_devices=False, background=False, resume=False, on_report=reports.put_nowait
        ) as kiosk:
            kiosk.app.scan(fresh_code())
            return await asyncio.wait_for(reports.get(), 5)

    report = asyncio.run(scan())
    assert report.status == "failed" and report.detail.startswith("backend unreachable, no offline codes cached")


def test_the_demo_terminal_shows_customers_and_the_log_goes_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_kiosk("demo", "--offline", "--scan", sample_code("private_public"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "issued (offline)" in result.stdout
    for noise in ("WARNING", "ERROR", "Traceback", "offline sync failed"):
        assert noise not in result.stdout + result.stderr
    assert "offline sync failed" in (out / "kiosk.log").read_text()  # the backend went away after the sync
