"""The whole kiosk, as processes: stand-in backend, virtual scanner, kiosk; and ``kiosk demo``."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK, sample_code, sample_codes
from kiosk.sim.escpos_reader import parse_escpos
from kiosk.sim.kiosk_config import write_kiosk_config
from tests.conftest import KIOSK, REPO, run_kiosk

pytestmark = pytest.mark.integration

HYGGELIG_SKO = [sample_code("on_demand", n) for n in range(2)]  # its webhook's vouchers
GRON_BUTIK = [sample_code("private_public", n) for n in range(2)]  # its static GB15 pool
PAPIRHUSET = sample_code("public_fallback")  # no pools: the public fallback


def qr_texts(path: Path) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(Image.open(path))]


def test_demo_scan_writes_the_four_files_and_the_screen_qr_is_the_link(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_kiosk("demo", "--scan", HYGGELIG_SKO[0], GRON_BUTIK[0], "hello", "--out", str(out))
    assert result.returncode == 0, result.stderr
    for name in ("001-screen.png", "001-print.bin", "001-print.png", "001-result.json"):
        assert (out / name).stat().st_size > 0
    doc = json.loads((out / "001-result.json").read_text())
    assert doc["status"] == "issued" and doc["source"] == "online"
    link = doc["voucher"]["link"]
    assert link.startswith("https://hyggelig-sko.example/redeem?code=HS-")
    assert doc["voucher"]["shop"]["name"] == "Hyggelig Sko"
    assert doc["ms"]["issue"] > 0 and doc["ms"]["total"] >= doc["ms"]["issue"]
    assert qr_texts(out / "001-screen.png") == [link]
    assert qr_texts(out / "001-print.png") == [link]
    job = parse_escpos((out / "001-print.bin").read_bytes())
    assert job.qr_payloads == [link] and doc["voucher"]["code"] in job.text and job.unknown == []
    second = json.loads((out / "002-result.json").read_text())
    assert second["voucher"]["code"].startswith("GB15-")
    third = json.loads((out / "003-result.json").read_text())
    assert third["status"] == "invalid" and third["voucher"] is None


def test_demo_reads_codes_from_stdin_and_draws_the_qr(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_kiosk("demo", "--out", str(out), input=f"{PAPIRHUSET}\nnot-a-code\n{PAPIRHUSET}\n")
    assert result.returncode == 0, result.stderr
    assert "issued (online)" in result.stdout and "▀" in result.stdout
    statuses = [json.loads((out / f"00{k}-result.json").read_text())["status"] for k in (1, 2, 3)]
    assert statuses == ["issued", "invalid", "already_returned"]
    assert not (out / "002-print.bin").exists()  # nothing printed for a notice
    assert qr_texts(out / "002-screen.png") == []


def test_list_codes() -> None:
    result = run_kiosk("demo", "--list-codes")
    assert result.returncode == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == [item["code"] for item in sample_codes()]


def test_kiosk_run_reads_the_virtual_scanner_process(backend, tmp_path: Path) -> None:
    # The scanner types each code from its stdin: the first once the kiosk says it is ready (a
    # serial port drops what was sent before it was opened), the second once the first voucher is
    # recorded, so the test waits on events, never on how fast this machine is.
    scanner = subprocess.Popen(
        [*KIOSK, "sim", "scanner", "--terminator", "crlf", "--delay-ms", "1", "--hold", "30"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    kiosk = None
    try:
        assert scanner.stdout is not None and scanner.stdin is not None
        pty_path = scanner.stdout.readline().strip()
        assert pty_path.startswith("/dev/pts/")
        config = write_kiosk_config(
            tmp_path / "run" / "kiosk.toml",
            backend_url=backend.url,
            token=DEMO_KIOSK_TOKEN,
            drop_point=DROP_POINT_DK,
            scanner_device=pty_path,
        )
        record = tmp_path / "record"
        kiosk = subprocess.Popen(
            [*KIOSK, "run", "--config", str(config), "--record", str(record)],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert kiosk.stderr is not None
        ready = kiosk.stderr.readline()
        assert ready.startswith("kiosk ready:"), ready
        for code, result in ((HYGGELIG_SKO[1], "001-result.json"), (GRON_BUTIK[1], "002-result.json")):
            scanner.stdin.write(code + "\n")
            scanner.stdin.flush()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (record / result).exists():
                time.sleep(0.05)
        first = json.loads((record / "001-result.json").read_text())
        second = json.loads((record / "002-result.json").read_text())
        assert first["code"] == HYGGELIG_SKO[1] and first["voucher"]["code"].startswith("HS-")
        assert second["code"] == GRON_BUTIK[1] and second["voucher"]["code"].startswith("GB15-")
        printed = (tmp_path / "run" / "printer.bin").read_bytes()
        assert first["voucher"]["code"].encode() in printed and second["voucher"]["code"].encode() in printed
        assert qr_texts(tmp_path / "run" / "screen" / "screen.png") == [second["voucher"]["link"]]
        kiosk.send_signal(signal.SIGTERM)
        assert kiosk.wait(timeout=10) == 0
    finally:
        for process in (kiosk, scanner):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
