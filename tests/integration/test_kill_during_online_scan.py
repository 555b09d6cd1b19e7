"""Regression (found by attacking the kiosk as a stranger): a kiosk killed (power cut, OOM, watchdog) while an online scan is in flight loses that
customer's voucher for good. The backend has recorded the return and handed out a voucher; the
kiosk never persisted the scan's Idempotency-Key, so after the restart nothing replays or
reconciles it, the journal has no row, and the customer who scans the same packaging again is told
"already returned". The voucher is counted against the packaging and the shop, and nobody got it.

Now: the scan's key is journalled before the request goes out; a restart asks again with it (and a rescan uses it), so the backend's voucher is found and shown.

(A kiosk that merely times out is fine: it issues offline with online_attempt_key and the backend
releases the online voucher. Only a kill in the same window loses the key.)

How: the stand-in backend behind a proxy that relays the scan and holds the answer 1.5 s (a slow
mobile link; the shop's webhook alone may take 1.5 s). `kiosk run` scans through a pty; the test
SIGKILLs it once the backend has answered, restarts it, and scans the same packaging.

Run: .venv/bin/python -m pytest tests/integration/test_kill_during_online_scan.py -q -p no:cacheprovider -s
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import tty
from pathlib import Path

import httpx

from kiosk.sim.backend_store import new_ulid
from kiosk.sim.demo_seed import SHOPS
from tests.conftest import KIOSK, REPO, BackendProcess, QuietHandler, serve_on_loopback


def _delaying_proxy(target: str, answered: threading.Event, hold_s: float):
    class Handler(QuietHandler):
        def _relay(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            relayed = httpx.request(self.command, target + self.path, content=body, headers=headers, timeout=10)
            if self.path == "/me/packaging/scan":
                answered.set()
                time.sleep(hold_s)  # the answer is on its way back
            try:
                self.send_response(relayed.status_code)
                for k, v in relayed.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(relayed.content)))
                self.end_headers()
                self.wfile.write(relayed.content)
            except OSError:
                pass

        do_GET = do_POST = do_DELETE = _relay

    return serve_on_loopback(Handler)


def _start_kiosk(config: Path, record: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [*KIOSK, "run", "--config", str(config), "--record", str(record)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if line.startswith("kiosk ready"):
            threading.Thread(target=process.stderr.read, daemon=True).start()  # keep draining
            return process
    raise RuntimeError("the kiosk did not start")


def test_a_kill_during_an_online_scan_loses_no_voucher(tmp_path: Path) -> None:
    backend = BackendProcess(
        tmp_path / "backend.sqlite", "--seed", "demo", "--kiosk-config", str(tmp_path / "kiosk.toml")
    )
    answered = threading.Event()
    proxy, proxy_url = _delaying_proxy(backend.url, answered, hold_s=1.5)
    master, slave = os.openpty()
    tty.setraw(slave)
    config = tmp_path / "kiosk.toml"
    text = config.read_text()
    text = re.sub(r'url = "[^"]*"', f'url = "{proxy_url}"', text, count=1)
    text = text.replace('[scanner]\ntype = "none"', f'[scanner]\ntype = "serial"\ndevice = "{os.ttyname(slave)}"')
    text = text.replace('type = "png"', 'type = "none"')
    config.write_text(text)
    packaging = SHOPS["sko"].prefix + new_ulid()
    kiosk = None
    try:
        kiosk = _start_kiosk(config, tmp_path / "run1")
        time.sleep(3)  # its first offline top-up
        os.write(master, packaging.encode() + b"\r")
        assert answered.wait(10), "the scan never reached the backend"
        time.sleep(0.3)
        kiosk.send_signal(signal.SIGKILL)  # the power goes, the answer still on the wire
        kiosk.wait()

        journal = subprocess.run(
            [*KIOSK, "journal", "--json", "--config", str(config)], capture_output=True, text=True, cwd=REPO
        ).stdout
        returns = [r for r in backend.state()["returns"] if r["barcode"] == packaging]
        print("backend's return for the packaging:", json.dumps(returns)[:300])
        print("kiosk journal:", journal.strip())

        kiosk = _start_kiosk(config, tmp_path / "run2")
        os.write(master, packaging.encode() + b"\r")
        result = None
        for _ in range(100):
            files = sorted((tmp_path / "run2").glob("*-result.json"))
            if files:
                result = json.loads(files[0].read_text())
                break
            time.sleep(0.1)
        print("the same customer, after the restart:", result and (result["status"], result["detail"]))
        assert returns and returns[0]["voucher"] is not None, "the backend handed out a voucher for it"
        assert packaging in journal or (result and result["status"] == "issued"), (
            "the voucher the backend handed out for this packaging was never shown, is not in the journal,"
            " and the customer now gets: " + str(result and result["status"])
        )
    finally:
        if kiosk is not None and kiosk.poll() is None:
            kiosk.send_signal(signal.SIGTERM)
            kiosk.wait(10)
        proxy.shutdown()
        backend.stop()
