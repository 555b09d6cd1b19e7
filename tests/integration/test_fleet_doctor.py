"""``kiosk doctor`` as a technician runs it, against the stand-in backend: one verdict line per item,
exit 0 only when every item is fine, and the same verdicts as the running kiosk's status."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiosk.fleet.verdicts import (
    clock_verdict,
    disk_verdict,
    journal_verdict,
    offline_codes_verdict,
    printer_verdict,
)
from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN
from tests.conftest import run_kiosk

pytestmark = pytest.mark.integration


def verdict_lines(stdout: str) -> dict[str, str]:
    lines = stdout.splitlines()
    assert lines and all(line.startswith(("ok   ", "FAIL ")) for line in lines), stdout
    return {line[5:].split(":", 1)[0]: line for line in lines}


def test_doctor_fails_until_offline_codes_are_cached_then_passes(backend, tmp_path: Path) -> None:
    config = str(tmp_path / "kiosk.toml")
    first = run_kiosk("doctor", "--config", config)
    lines = verdict_lines(first.stdout)
    assert first.returncode == 1, first.stdout + first.stderr
    assert lines["offline codes"].startswith("FAIL") and "none cached" in lines["offline codes"]
    for item in ("printer", "backend", "token", "clock", "journal", "disk"):
        assert lines[item].startswith("ok   "), lines[item]
    assert run_kiosk("pools", "sync", "--config", config).returncode == 0
    second = run_kiosk("doctor", "--config", config)
    lines = verdict_lines(second.stdout)
    assert second.returncode == 0, second.stdout
    assert lines["data partition"] == f"ok   data partition: {tmp_path / 'data'} writable, journal intact"
    assert "token: accepted" in lines["token"]


def test_the_release_scope_checks_what_a_release_answers_for(tmp_path: Path) -> None:
    """After an upgrade the health gate asks only what the release answers for: a kiosk whose
    backend is away and whose codes ran out (no backend runs here) is still a healthy release."""
    from kiosk.sim.kiosk_config import write_kiosk_config

    config = write_kiosk_config(
        tmp_path / "kiosk.toml", backend_url="http://127.0.0.1:9", token=DEMO_KIOSK_TOKEN, drop_point="DP-1"
    )
    (tmp_path / "data").mkdir(mode=0o700)  # the data folder a kiosk that ran has
    everything = run_kiosk("doctor", "--config", str(config))
    assert everything.returncode == 1 and verdict_lines(everything.stdout)["backend"].startswith("FAIL")
    release = run_kiosk("doctor", "--config", str(config), "--scope", "release")
    lines = verdict_lines(release.stdout)
    assert release.returncode == 0, release.stdout + release.stderr
    assert set(lines) == {"journal", "disk", "data partition"}


def test_a_loose_token_file_and_a_refused_token_fail_without_showing_it(backend, tmp_path: Path) -> None:
    token = tmp_path / "kiosk.token"
    os.chmod(token, 0o644)
    loose = run_kiosk("doctor", "--config", str(tmp_path / "kiosk.toml"))
    assert loose.returncode == 1 and verdict_lines(loose.stdout)["token"].startswith("FAIL token: ")
    token.write_text("not-the-kiosks-token\n")
    os.chmod(token, 0o600)
    refused = run_kiosk("doctor", "--config", str(tmp_path / "kiosk.toml"))
    lines = verdict_lines(refused.stdout)
    assert refused.returncode == 1 and lines["token"] == "FAIL token: refused by the backend"
    for output in (loose.stdout + loose.stderr, refused.stdout + refused.stderr):
        assert DEMO_KIOSK_TOKEN not in output and "not-the-kiosks-token" not in output


def test_the_backend_away_is_one_line(tmp_path: Path) -> None:
    from kiosk.sim.kiosk_config import write_kiosk_config

    config = write_kiosk_config(
        tmp_path / "kiosk.toml", backend_url="http://127.0.0.1:9", token="t0ken-x", drop_point="dp"
    )
    done = run_kiosk("doctor", "--config", str(config))
    lines = verdict_lines(done.stdout)
    assert done.returncode == 1 and lines["backend"].startswith("FAIL backend: unreachable")
    assert "Traceback" not in done.stderr


def test_verdicts() -> None:
    assert printer_verdict("paper_out", False).line() == "FAIL printer: paper out"
    assert printer_verdict("ready", True).line() == "FAIL printer: ready, paper nearly used up"
    assert printer_verdict(None, None).ok
    assert not offline_codes_verdict({"a": 10, "b": 1}, enabled=True, watermark=5).ok
    assert offline_codes_verdict({}, enabled=False, watermark=5).ok
    assert journal_verdict(3, 30.0, max_issuances=100, max_age_s=3600).ok
    assert not journal_verdict(90, 30.0, max_issuances=100, max_age_s=3600).ok
    assert not clock_verdict(-95.0).ok and clock_verdict(2.0).ok and clock_verdict(None).ok
    assert not disk_verdict(50 * 2**20, 10 * 2**30).ok and disk_verdict(5 * 2**30, 10 * 2**30).ok


def test_speech_is_checked_when_it_is_on(tmp_path: Path) -> None:
    """A voice espeak-ng lacks is the technician's news: those screens would stay silent."""
    from kiosk.sim.kiosk_config import write_kiosk_config

    config = write_kiosk_config(
        tmp_path / "kiosk.toml", backend_url="http://127.0.0.1:9", token="t0ken-x", drop_point="dp"
    )
    base = config.read_text()
    config.write_text(base + "\n[audio]\nenabled = true\n")
    lines = verdict_lines(run_kiosk("doctor", "--config", str(config)).stdout)
    assert lines["speech"].startswith("ok   speech: espeak-ng has a voice for each of the"), lines["speech"]
    config.write_text(base + '\n[audio]\nenabled = true\nvoices = ["en_GB=zz"]\n')
    done = run_kiosk("doctor", "--config", str(config))
    assert done.returncode == 1
    assert (
        verdict_lines(done.stdout)["speech"]
        == "FAIL speech: espeak-ng has no voice zz (en_GB): those screens stay silent"
    )
    config.write_text(base)
    assert "speech" not in verdict_lines(run_kiosk("doctor", "--config", str(config)).stdout)  # off: not asked


def test_a_ca_file_without_a_certificate_and_a_loose_metrics_token_are_one_line_each(tmp_path: Path) -> None:
    from kiosk.sim.kiosk_config import write_kiosk_config

    config = write_kiosk_config(
        tmp_path / "kiosk.toml", backend_url="https://127.0.0.1:9", token="t0ken-x", drop_point="dp"
    )
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    (tmp_path / "metrics.token").write_text("metrics-SECRET-token\n")
    (tmp_path / "metrics.token").chmod(0o644)
    text = config.read_text().replace("[backend]\n", '[backend]\nca_file = "ca.pem"\n', 1)
    config.write_text(
        text + '\n[metrics]\nlisten = "127.0.0.1:0"\ntoken_file = "metrics.token"\n'
        '\n[audio]\nenabled = true\nvoices = ["en_GB=en-gb+f3"]\n'  # a voice with espeak-ng's variant
    )
    done = run_kiosk("doctor", "--config", str(config))
    lines = verdict_lines(done.stdout)
    assert done.returncode == 1 and "Traceback" not in done.stderr and "SECRET" not in done.stdout + done.stderr
    assert lines["backend"].startswith("FAIL backend: not asked: backend.ca_file cannot be used: ")
    assert lines["metrics token"].startswith("FAIL metrics token: ") and "0600" in lines["metrics token"]
    assert lines["speech"].startswith("ok   speech: ")
