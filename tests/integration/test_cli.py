"""The ``kiosk`` command as people read it: real processes against the stand-in backend (or a
hostile one on loopback), outputs for people that are aligned, localised and repr-free, ``--json``
unchanged, a quiet end when stdout closes early, and no terminal escape from outside text."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.core.text import clean_text
from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK, sample_codes
from kiosk.sim.kiosk_config import write_kiosk_config
from tests.conftest import KIOSK, REPO, QuietHandler, run_kiosk, serve_on_loopback

pytestmark = pytest.mark.integration
CODES = [item["code"] for item in sample_codes()]
SKO = [code for code in CODES if code.startswith("10HS")]
GRON = [code for code in CODES if code.startswith("20GB")]
HOSTILE = "\x1b]0;pwned\x07\x1b[2J"
#: Every character a terminal may obey: C0 (the newline aside), DEL and C1.
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
LOCAL_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T"


def danish_config(backend_url: str, folder: Path) -> str:
    return str(
        write_kiosk_config(
            folder / "kiosk.toml",
            backend_url=backend_url,
            token=DEMO_KIOSK_TOKEN,
            drop_point=DROP_POINT_DK,
            locale="da_DK",
            screen_type="none",
        )
    )


def clean(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """The run printed no traceback, no control character and not the kiosk's token."""
    for stream in (result.stdout, result.stderr):
        assert "Traceback" not in stream and DEMO_KIOSK_TOKEN not in stream
        assert CONTROL.search(stream) is None, repr(stream)
    return result


def column_starts(line: str) -> list[int]:
    return [match.start() for match in re.finditer(r"(?<=  )\S", line)]


# --- for people -----------------------------------------------------------------------------------


def test_journal_and_pools_say_so_when_empty(backend, tmp_path: Path) -> None:
    config = danish_config(backend.url, tmp_path / "dk")
    assert clean(run_kiosk("journal", "--config", config)).stdout == "no vouchers handed out yet\n"
    assert clean(run_kiosk("journal", "--pending", "--config", config)).stdout == "nothing waiting to be forwarded\n"
    assert json.loads(run_kiosk("journal", "--json", "--config", config).stdout) == []
    status = clean(run_kiosk("pools", "status", "--config", config))
    assert status.returncode == 0 and status.stdout.splitlines() == [
        "codes cached for offline use: none",
        "bundles: none",
        "pending issuances: 0",
        "last contact with the backend: never",
        "last forward: never",
    ]


def test_scan_pools_and_journal_print_for_people(backend, tmp_path: Path) -> None:
    config = danish_config(backend.url, tmp_path / "dk")
    scan = clean(run_kiosk("scan", GRON[0], "--config", config))
    assert scan.returncode == 0
    assert re.fullmatch(
        r"issued \(online\): Grøn Butik, 15\u00a0%, code (GB15-\w+), expires 1\.1\.2030, "
        r"link https://gron-butik\.example/redeem\?code=\1\n",
        scan.stdout,
    ), scan.stdout
    again = clean(run_kiosk("scan", GRON[0], "--config", config))
    assert again.returncode == 1 and again.stdout.startswith("already_returned: ")

    synced = clean(run_kiosk("pools", "sync", "--config", config))
    lines = synced.stdout.splitlines()
    assert re.fullmatch(r"forwarded 0 issuances; reserved \d+ new codes \(bundle \w+\)", lines[0]), lines[0]
    cached = lines[lines.index("codes cached for offline use:") + 1 : lines.index("bundles:")]
    assert {line.split("  ")[1] for line in cached} >= {"Hyggelig Sko", "Grøn Butik"}
    assert len({tuple(column_starts(line)) for line in cached}) == 1 and len(column_starts(cached[0])) == 4
    assert all(re.search(r"  (public|private|private_public) +\d+ codes?$", line) for line in cached)
    assert re.fullmatch(rf"  \w+  expires {LOCAL_TIME}", lines[lines.index("bundles:") + 1])
    assert (
        re.fullmatch(rf"last contact with the backend: {LOCAL_TIME}", lines[-2]) and lines[-1] == "last forward: never"
    )
    assert not re.search(r"[{}\[\]']|Row", synced.stdout)  # no Python reprs

    status = json.loads(run_kiosk("pools", "status", "--json", "--config", config).stdout)
    assert set(status) == {"available", "bundles", "pending", "last_contact", "last_forward"}
    assert {tuple(row) for row in status["available"]} == {("shop_id", "visibility", "count")}
    released = clean(run_kiosk("pools", "release", "--config", config)).stdout.splitlines()
    assert re.fullmatch(r"forwarded 0 issuances; \d+ codes of bundle \w+ given back", released[0])
    assert released[1] == "codes cached for offline use: none"
    assert re.fullmatch(rf"  \w+  released {LOCAL_TIME}", released[3])

    clean(run_kiosk("scan", SKO[0], "--config", config))
    journal = clean(run_kiosk("journal", "--config", config)).stdout.splitlines()
    assert len(journal) == 2 and len({tuple(column_starts(line)) for line in journal}) == 1
    assert re.fullmatch(rf"{LOCAL_TIME}  online  GB15-\w+ +{GRON[0]}  forwarded", journal[0])
    assert journal[1].split()[5] == SKO[0]


def test_voucher_render_uses_the_catalogs_own_line() -> None:
    doc = json.dumps(
        {
            "code": "SAVE50-A1B2C3",
            "type": "amount",
            "value": 5000,
            "unit": "DKK",
            "conditions": "",
            "expires_at": "2027-01-01T12:00:00Z",
        }
    )
    english = run_kiosk("voucher", "render", "--locale", "en_GB", input=doc).stdout.splitlines()
    assert english[:3] == ["DKK\u00a050.00", "Use code SAVE50-A1B2C3", "Expiration date: 01/01/2027"]
    assert (
        run_kiosk("voucher", "render", "--locale", "da_DK", input=doc).stdout.splitlines()[1]
        == "Brug koden SAVE50-A1B2C3"
    )
    french = run_kiosk("voucher", "render", "--locale", "fr_FR", input=doc).stdout.splitlines()
    assert french[1:3] == ["Utilisez le code SAVE50-A1B2C3", "Date d’expiration\u00a0: 01/01/2027"]


# --- stdout closed early --------------------------------------------------------------------------


VOUCHER = json.dumps({"code": "T1", "type": "gift", "value": 1, "unit": "Tote bag", "conditions": "c"})
CONFIG = "--config={tmp}/kiosk.toml"


@pytest.mark.parametrize(
    "args, stdin",
    [
        (["--help"], None),
        (["pools", "--help"], None),
        (["demo", "--list-codes"], None),
        (["journal", CONFIG], None),
        (["journal", "--json", CONFIG], None),
        (["pools", "status", CONFIG], None),
        (["scan", "10HS0042", CONFIG], None),
        (["sim", "backend", "--db={tmp}/other.sqlite"], None),
        (["voucher", "render", "--locale", "en_GB"], VOUCHER),
        (["voucher", "render", "--locale", "en_GB", "--json"], VOUCHER),
    ],
    ids=lambda item: " ".join(item).replace(CONFIG, "").strip() if isinstance(item, list) else "",
)
def test_every_command_ends_quietly_when_stdout_is_closed(
    backend, tmp_path: Path, args: list[str], stdin: str | None
) -> None:
    reader, writer = os.pipe()
    os.close(reader)  # nobody will read: the first write (or the flush at exit) meets a closed pipe
    try:
        process = subprocess.run(
            [*KIOSK, *(arg.format(tmp=tmp_path) for arg in args)],
            stdout=writer,
            stderr=subprocess.PIPE,
            input=stdin,
            text=True,
            cwd=REPO,
            timeout=60,
        )
    finally:
        os.close(writer)
    assert process.returncode == 141 and process.stderr == ""


def test_a_reader_that_leaves_early_through_a_real_pipe() -> None:
    shell = f'set -o pipefail; {" ".join(KIOSK)} demo --list-codes | head -n 1; echo "status $?" >&2'
    result = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.stdout == f"{CODES[0]}  {sample_codes()[0]['note']}\n"
    assert re.fullmatch(r"status (0|141)\n", result.stderr), result.stderr  # 0 when head read it all in time


# --- outside text on the terminal -----------------------------------------------------------------


def test_escapes_in_a_voucher_are_neither_obeyed_nor_kept() -> None:
    doc = {
        "code": "SAVE50",
        "type": "percentage",
        "value": 15,
        "unit": "%",
        "conditions": HOSTILE + "\nline 2\x9b31m",
        "shop": {"name": "Evil\x1b[31m Shop\r", "description": "\x07"},
    }
    text = clean(run_kiosk("voucher", "render", "--locale", "en_GB", input=json.dumps(doc)))
    # The voucher validator drops control characters at the edge (kiosk.core.text), so none is left
    # for the terminal layer to spell out; what remains is the text a customer would read.
    assert text.stdout.splitlines()[0] == "Evil[31m Shop"
    assert "]0;pwned[2J\nline 231m" in text.stdout
    as_json = clean(run_kiosk("voucher", "render", "--locale", "en_GB", "--json", input=json.dumps(doc)))
    parsed = json.loads(as_json.stdout)
    assert parsed["conditions"] == clean_text(doc["conditions"]) and parsed["shop_name"] == "Evil[31m Shop"


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40).map(lambda t: t + "\x1b[2J\x9b"))
def test_any_conditions_reach_the_terminal_inert(conditions: str) -> None:
    doc = json.dumps({"code": "C1", "type": "gift", "value": 1, "unit": "Tote bag", "conditions": conditions})
    assert clean(run_kiosk("voucher", "render", "--locale", "de_DE", input=doc)).returncode == 0
    assert (
        json.loads(clean(run_kiosk("voucher", "render", "--locale", "de_DE", "--json", input=doc)).stdout)["conditions"]
        == clean_text(conditions).strip()
    )


class HostileBackend:
    """Answers scans as a backend that lets shops write anything: escapes in names and messages."""

    def __init__(self) -> None:
        self.issued: list[str] = []
        outer = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                barcode = body["barcode"]
                if barcode.endswith("66"):
                    status, answer = 400, {"message": HOSTILE + " refused\x9b31m"}
                else:
                    code = f"V-{barcode[-4:]}"
                    outer.issued.append(code)
                    hostile = barcode.endswith("42")
                    data = {
                        "code": code,
                        "link": f"https://shop.example/r?c={code}",
                        "value_data": {"type": "percentage", "value": 10, "unit": "%"},
                        "conditions": HOSTILE if hostile else "plain",
                        "expires_at": "2027-03-15T12:00:00Z",
                        "shop": {"name": ("Evil" + HOSTILE) if hostile else "Good Shop"},
                    }
                    status, answer = 201, {"id": code, "type": "Voucher", "data": data}
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.httpd, self.url = serve_on_loopback(Handler)


def test_a_hostile_backend_cannot_write_to_the_terminal_and_the_next_scan_is_served(tmp_path: Path) -> None:
    hostile = HostileBackend()
    try:
        config = danish_config(hostile.url, tmp_path)
        evil = clean(run_kiosk("--log-level", "debug", "scan", "10HS0042", "--config", config))
        assert evil.returncode == 0 and "V-0042" not in evil.stderr and "shop.example" not in evil.stderr
        # Control characters are dropped where the answer is read (kiosk.core.text), before printing.
        assert evil.stdout == (
            "issued (online): Evil]0;pwned[2J, 10\u00a0%, code V-0042, "
            "expires 15.3.2027, link https://shop.example/r?c=V-0042\n"
        )
        refused = clean(run_kiosk("--log-level", "debug", "scan", "10HS0066", "--config", config))
        assert refused.returncode == 1 and "]0;pwned[2J refused31m" in refused.stdout
        assert json.loads(clean(run_kiosk("scan", "10HS0042", "--config", config, "--json")).stdout)["status"] == (
            "already_returned"
        )  # this kiosk's journal already rewarded it: no second code
        served = json.loads(clean(run_kiosk("scan", "10HS0077", "--config", config, "--json")).stdout)
        assert (served["status"], served["source"], served["voucher"]["code"]) == ("issued", "online", "V-0077")
        journal = json.loads(run_kiosk("journal", "--json", "--config", config).stdout)
        assert sorted(entry["code"] for entry in journal) == ["V-0042", "V-0077"]
        assert hostile.issued == ["V-0042", "V-0077"]
    finally:
        hostile.httpd.shutdown()
        hostile.httpd.server_close()


def test_the_stand_in_backend_takes_a_database_path_relative_to_where_it_runs(tmp_path: Path) -> None:
    """``kiosk sim backend --db be.db``: its Voucherify shop's files beside it, found again (they
    were looked for at be.db.shop/be.db.shop/..., a traceback)."""
    process = subprocess.Popen(
        [*KIOSK, "sim", "backend", "--db", "be.db", "--seed", "demo"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline() or "{}")
        assert ready.get("shop_webhook", "").startswith("http://127.0.0.1:"), ready
        assert (tmp_path / "be.db.shop" / "voucherify.sqlite").is_file()
    finally:
        process.terminate()
        _, err = process.communicate(timeout=20)
    assert "Traceback" not in err
