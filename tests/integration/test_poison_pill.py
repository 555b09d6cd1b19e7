"""A voucher that keeps failing to be shown cannot keep the kiosk down: attempts are counted in the
journal, and after ``MAX_RICH_ATTEMPTS`` it comes back in its plain form (text and code, printed as
text), never blocking start-up; ``kiosk scan`` never takes over another packaging's voucher."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from kiosk.config import load_config
from kiosk.issuance.offline import MAX_RICH_ATTEMPTS
from kiosk.runtime import open_kiosk
from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK
from kiosk.sim.escpos_reader import parse_escpos
from kiosk.sim.kiosk_config import write_kiosk_config
from tests.conftest import run_kiosk
from tests.integration.hostile import fresh_code

pytestmark = pytest.mark.integration


@pytest.fixture
def config(backend, tmp_path: Path):
    return load_config(
        write_kiosk_config(
            tmp_path / "kiosk" / "kiosk.toml",
            backend_url=backend.url,
            token=DEMO_KIOSK_TOKEN,
            drop_point=DROP_POINT_DK,
            screen_type="web",
        )
    )


async def _journal_unshown(config, packaging: str) -> tuple[str, str]:
    """An offline voucher journalled for ``packaging`` whose kiosk died before showing it."""
    async with open_kiosk(config, with_devices=False, background=False, resume=False) as kiosk:
        await kiosk.offline.sync(force=True)
        claim = kiosk.offline.claim(packaging)
        return claim.key, claim.voucher.code


async def _start_and_report(config, attempts_before: int, key: str):
    async with open_kiosk(config, with_devices=False, background=False, resume=False) as kiosk:
        for _ in range(attempts_before):
            kiosk.store.note_display_attempt(key)  # what earlier starts that died while showing it left
    reports = []
    async with open_kiosk(config, on_report=reports.append) as kiosk:
        for _ in range(300):
            if reports and kiosk.screen.frame and kiosk.screen.frame["state"] == "showing_voucher":
                break
            await asyncio.sleep(0.02)
        frame = kiosk.screen.frame
        (entry,) = [e for e in kiosk.store.journal() if e.key == key]
        return reports, frame, entry.display_attempts, entry


def test_each_start_counts_an_attempt_and_a_shown_voucher_is_not_shown_again(config) -> None:
    key, code = asyncio.run(_journal_unshown(config, fresh_code("gron")))
    reports, frame, attempts, entry = asyncio.run(_start_and_report(config, 0, key))
    assert [(r.status, r.voucher.code) for r in reports] == [("issued", code)]
    assert frame["voucher"]["plain"] is False and frame["voucher"]["qr_svg"]
    assert attempts == 1 and entry.shown


def test_a_voucher_whose_showing_never_finished_comes_back_plain_on_screen_and_paper(config) -> None:
    key, code = asyncio.run(_journal_unshown(config, fresh_code("gron")))
    reports, frame, attempts, entry = asyncio.run(_start_and_report(config, MAX_RICH_ATTEMPTS, key))
    (report,) = reports
    assert report.status == "issued" and report.voucher.code == code and entry.shown
    assert frame["voucher"]["plain"] is True and frame["voucher"]["qr_svg"] is None and frame["voucher"]["code"] == code
    job = parse_escpos(report.print_bytes)
    assert code in job.text and job.qr_payloads == [] and job.unknown == []


def test_kiosk_scan_answers_for_its_own_code_and_leaves_another_packagings_voucher_unshown(config) -> None:
    key, code = asyncio.run(_journal_unshown(config, fresh_code("gron")))
    mine = fresh_code()
    result = run_kiosk("scan", mine, "--config", str(config.source), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["code"] == mine and doc["voucher"]["code"] != code

    async def still_unshown() -> bool:
        async with open_kiosk(config, with_devices=False, background=False, resume=False) as kiosk:
            return not [e for e in kiosk.store.journal() if e.key == key][0].shown

    assert asyncio.run(still_unshown())
