"""End to end on loopback: a kiosk (``open_kiosk``, web screen, file printer) → the stand-in RE-ZIP →
Nordlys Kaffe's ``kiosk shop webhook`` → the stand-in Voucherify, every Voucherify request and answer
validated against the official spec.

A return yields a Voucherify code on the screen and on paper, whose QR link goes to the shop once
(303, then the checkout redeems it) and shows the customer's page the second time. Voucherify slow,
down or rate-limited: the shop's service answers 503 in time, RE-ZIP falls back to the shop's static
pool, and the customer still gets a voucher within the kiosk's deadline (an online one: past the
deadline the kiosk would have issued offline), an exported Voucherify code. A kiosk cut off from
RE-ZIP hands out an exported code whose link works once too. No code is handed out twice, and nothing
logs a traceback, a token, a code or a link."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kiosk.app import ScanReport
from kiosk.sim.demo_seed import DEMO_SHOP_TOKEN
from kiosk.sim.escpos_reader import parse_escpos
from kiosk.sim.voucherify_shop import RATE_LIMIT, TILL_TOKEN, VoucherifyShop
from tests.integration.hostile import KioskHarness, fresh_code
from tests.integration.shop_harness import spec_transports

pytestmark = pytest.mark.integration


class Run:
    """The running kiosk and world, and every report of the module's scans."""

    def __init__(self, harness: KioskHarness, problems: list[str]) -> None:
        self.harness, self.problems = harness, problems
        self.reports: list[ScanReport] = []
        assert harness.world.shop is not None
        self.shop: VoucherifyShop = harness.world.shop

    def scan(self) -> ScanReport:
        report = self.harness.scan(fresh_code("kaffe"))
        self.reports.append(report)
        assert report.status == "issued" and report.voucher is not None, report
        return report

    def exported(self) -> set[str]:
        rows = self.shop.voucherify.store.read(
            "SELECT v.code FROM publications p JOIN vouchers v ON v.id = p.voucher_id "
            "WHERE p.source_id LIKE 'rezip-export-%'"
        )
        return {row["code"] for row in rows}

    def link_works_once(self, report: ScanReport) -> None:
        """Open the voucher's link as the customer's phone does: first the shop's checkout (which
        redeems the code), then, opened again, the page saying it was used."""
        voucher = report.voucher
        assert voucher is not None and voucher.link == self.shop.link_for(voucher.code)
        first = httpx.get(voucher.link)
        assert first.status_code == 303, first.text
        checkout = httpx.get(first.headers["Location"])
        assert checkout.status_code == 200 and "your discount is applied" in checkout.text
        again = httpx.get(voucher.link, headers={"Accept-Language": "da"})
        assert again.status_code == 410 and "Denne kupon er allerede brugt" in again.text
        assert self.shop.voucherify.store.voucher(voucher.code)["redeemed"] == 1

    def fell_back(self, report: ScanReport) -> None:
        """The customer got a code of the shop's static pool, online, from RE-ZIP's fallback."""
        assert report.source == "online" and report.voucher is not None
        assert report.voucher.code in self.exported()
        failures = httpx.get(self.harness.world.url + "/_sim/state").json()["webhook_failures"]
        assert failures[-1]["reason"] == "HTTP 503", failures[-3:]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    problems: list[str] = []
    folder: Path = tmp_path_factory.mktemp("shop-end-to-end")
    with KioskHarness(folder, world_options={"voucherify_transport": spec_transports(problems)}) as harness:
        made = Run(harness, problems)
        yield made
        codes = [report.voucher.code for report in made.reports if report.voucher]
        links = [report.voucher.link for report in made.reports if report.voucher and report.voucher.link]
        logged = harness.log_problems([*codes, *links, DEMO_SHOP_TOKEN, TILL_TOKEN, made.shop.voucherify.app_token])
    assert len(codes) == len(set(codes)), "a code was handed out twice"
    assert logged == []
    assert problems == [], "\n".join(problems)


def test_a_return_yields_a_voucherify_code_on_screen_and_paper_whose_link_works_once(run: Run) -> None:
    report = run.scan()
    voucher = report.voucher
    assert report.source == "online" and voucher is not None and voucher.code.startswith("RZ20-")
    assert voucher.code not in run.exported()  # published for this return by the shop's webhook
    assert voucher.shop is not None and voucher.shop.name == "Nordlys Kaffe"
    frame = run.harness.frame()
    assert frame is not None and frame["state"] == "showing_voucher"
    assert (frame["voucher"]["code"], frame["voucher"]["qr"]) == (voucher.code, voucher.link)
    assert report.print_bytes is not None
    paper = parse_escpos(report.print_bytes)
    assert paper.qr_payloads == [voucher.link] and voucher.code in paper.text
    run.link_works_once(report)


@pytest.mark.parametrize("trouble", ["slow", "down"])
def test_voucherify_in_trouble_the_customer_gets_the_static_pool_in_time(run: Run, trouble: str) -> None:
    voucherify = run.shop.voucherify
    port = int(voucherify.ready_line()["url"].rsplit(":", 1)[1])
    if trouble == "slow":
        voucherify.delay_s = 3.0  # the service's deadline is 1.2 s, RE-ZIP's webhook timeout 1.5 s
    else:
        voucherify.close()
    try:
        run.fell_back(run.scan())
    finally:
        voucherify.delay_s = 0
        if trouble == "down":
            voucherify.serve(port=port).start()
    assert run.scan().voucher.code not in run.exported()  # Voucherify is back: the webhook's code again


def test_an_offline_kiosk_hands_out_an_exported_code_whose_link_works_once(run: Run) -> None:
    run.harness.proxy.down = True  # RE-ZIP cannot be reached
    try:
        report = run.scan()
    finally:
        run.harness.proxy.down = False
    assert report.source == "offline" and report.voucher is not None and report.voucher.code in run.exported()
    run.link_works_once(report)


def test_voucherify_rate_limited_the_customer_gets_the_static_pool_in_time(run: Run) -> None:
    """Last: the service's client then waits out Voucherify's Retry-After (up to a minute)."""
    run.shop.voucherify.limit_requests(0)
    try:
        run.fell_back(run.scan())
        run.fell_back(run.scan())  # the client does not ask again: RE-ZIP falls back at once
    finally:
        run.shop.voucherify.limit_requests(RATE_LIMIT)
