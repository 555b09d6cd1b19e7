"""hardware/monitoring/: the alert rules pass ``promtool check rules`` and their own ``promtool test
rules``, the example Prometheus configuration passes ``promtool check config``, and every metric the
rules and the Grafana dashboard read is one the kiosk serves."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kiosk.fleet.metrics import KioskMetrics
from kiosk.fleet.snapshot import ContactWatch, SnapshotTaker
from kiosk.status import KioskStatus
from tests.conftest import REPO

pytestmark = pytest.mark.integration

MONITORING = REPO / "hardware" / "monitoring"
promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed (Debian's prometheus package; hardware/system-packages.txt lists it)",
)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, cwd=MONITORING)


@promtool
def test_the_rules_pass_promtool_check_and_their_tests() -> None:
    checked = _promtool("check", "rules", "kiosk-alerts.yml")
    assert checked.returncode == 0 and "SUCCESS: 10 rules found" in checked.stdout, checked.stdout + checked.stderr
    tested = _promtool("test", "rules", "kiosk-alerts.test.yml")
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


@promtool
def test_a_broken_expectation_fails_promtool(tmp_path: Path) -> None:
    shutil.copy(MONITORING / "kiosk-alerts.yml", tmp_path)
    wrong = (MONITORING / "kiosk-alerts.test.yml").read_text().replace("k1: 4 offline codes left", "k1: 5 offline")
    (tmp_path / "wrong.test.yml").write_text(wrong)
    done = subprocess.run(["promtool", "test", "rules", "wrong.test.yml"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode != 0 and "KioskOfflineCodesLow" in done.stdout + done.stderr


@promtool
def test_the_example_prometheus_configuration(tmp_path: Path) -> None:
    token = tmp_path / "kiosk-metrics-token"
    token.write_text("token\n")
    shutil.copy(MONITORING / "kiosk-alerts.yml", tmp_path)
    text = (
        (MONITORING / "prometheus.example.yml").read_text().replace("/etc/prometheus/kiosk-metrics-token", str(token))
    )
    (tmp_path / "prometheus.yml").write_text(text)
    done = subprocess.run(
        ["promtool", "check", "config", "prometheus.yml"], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr


def served_names() -> set[str]:
    """Every metric family (and sample) name a kiosk with a printer and a board serves."""
    status = KioskStatus("idle", "da_DK", "k1", offline=False, printer="ready")
    taker = SnapshotTaker(lambda: status, None, ContactWatch(), has_printer=True, board=lambda: "open")
    taker.contact.answered()
    metrics = KioskMetrics(taker.take)
    metrics.backend_answered("scan", "2xx", 0.1)  # series with labels appear with their first value
    names = set()
    for family in text_string_to_metric_families(metrics.render().decode()):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def test_rules_and_dashboard_read_metrics_the_kiosk_serves() -> None:
    served = served_names() | {"up"}
    rules = (MONITORING / "kiosk-alerts.yml").read_text()
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    expressions = [rules] + [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for text in expressions for name in re.findall(r"\b((?:kiosk|process)_[a-z_]+|up)\{", text)}
    assert used, "no metric found in the rules"
    assert used <= served, used - served
    assert {"kiosk_printer_state", "kiosk_offline_codes_left_total", "kiosk_journal_pending"} <= used
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
