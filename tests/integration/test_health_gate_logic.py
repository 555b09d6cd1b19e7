"""packaging/health-gate's decisions, quickly and without root: the real script on a staged root
(REZIP_KIOSK_ROOT) with a fake systemctl on PATH that answers as systemd would for the release
/opt/rezip-kiosk/current points at (a broken one fails). tests/release/test_health_gate.py runs the
same gate under a real systemd in a container."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GATE = REPO / "packaging/health-gate"
FAKE_SYSTEMCTL = """\
#!/bin/sh
# systemd as the gate sees it: the unit runs when current is a good release, fails when it is broken.
root=$REZIP_KIOSK_ROOT
release=$(readlink "$root/opt/rezip-kiosk/current")
echo "$*" >>"$root/systemctl.log"
case "$1" in
    is-active) cat "$root/state" ;;
    restart) echo "$release" >>"$root/restarts" ;;
    show)
        if grep -qx "$release" "$root/broken" 2>/dev/null; then
            printf 'ActiveState=failed\\nSubState=failed\\nMainPID=0\\nResult=exit-code\\n'
        else
            printf 'ActiveState=active\\nSubState=running\\nMainPID=4242\\nResult=success\\n'
        fi ;;
esac
exit 0
"""


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for release in ("1.0.0", "2.0.0"):
        (root / "opt/rezip-kiosk" / release).mkdir(parents=True)
    (root / "opt/rezip-kiosk/current").symlink_to("1.0.0")
    (root / "run/systemd/system").mkdir(parents=True)
    (root / "var/lib/kiosk").mkdir(parents=True)
    (root / "state").write_text("active\n")
    (root / "etc/kiosk").mkdir(parents=True)
    drain = tmp_path / "drain"
    drain.write_text(f'#!/bin/sh\nreadlink "{root}/opt/rezip-kiosk/current" >"{root}/drained"\n')
    drain.chmod(0o755)
    (root / "etc/kiosk/health-gate.toml").write_text(
        f'timeout_s = 2.0\ndoctor = ["true"]\ndoctor_user = ""\ndrain = ["{drain}"]\ndrain_timeout_s = 5.0\n'
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(FAKE_SYSTEMCTL)
    (bin_dir / "systemctl").chmod(0o755)
    return root


def gate(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = f"{root.parent / 'bin'}:{os.environ['PATH']}"
    env = {**os.environ, "REZIP_KIOSK_ROOT": str(root), "PATH": path}
    return subprocess.run(["python3", str(GATE), *args], capture_output=True, text=True, env=env, timeout=60)


def record(root: Path) -> dict:
    return json.loads((root / "var/lib/kiosk/release-health.json").read_text())


def current(root: Path) -> str:
    return os.readlink(root / "opt/rezip-kiosk/current")


def test_a_healthy_upgrade_is_kept_after_a_drain_of_the_old_release(staged: Path) -> None:
    result = gate(staged, "activate", "2.0.0")
    assert result.returncode == 0, result.stderr
    assert (staged / "drained").read_text().strip() == "1.0.0"  # drained before the switch
    assert current(staged) == "2.0.0" and os.readlink(staged / "opt/rezip-kiosk/previous") == "1.0.0"
    assert (staged / "restarts").read_text().split() == ["2.0.0"]
    assert record(staged) == {"running": "2.0.0", "previous": "1.0.0", "checked": True}
    keep = (staged / "etc/apt/apt.conf.d/51rezip-kiosk-keep-releases").read_text()
    assert '"^rezip-kiosk-2[.]0[.]0$";' in keep and '"^rezip-kiosk-1[.]0[.]0$";' in keep
    assert (staged / "var/lib/kiosk/release-health.json").stat().st_mode & 0o077 == 0


def test_a_release_that_fails_is_rolled_back_and_the_failure_recorded(staged: Path) -> None:
    (staged / "broken").write_text("2.0.0\n")
    result = gate(staged, "activate", "2.0.0")
    assert result.returncode == 0, result.stderr  # dpkg must finish
    assert current(staged) == "1.0.0" and os.readlink(staged / "opt/rezip-kiosk/previous") == "2.0.0"
    assert (staged / "restarts").read_text().split() == ["2.0.0", "1.0.0"]
    rollback = record(staged)["rollback"]
    assert rollback["failed_release"] == "2.0.0" and rollback["restored_release"] == "1.0.0"
    assert rollback["reason"] == "the service failed (exit-code)" and rollback["previous_healthy"] is True
    assert "reset-failed rezip-kiosk.service" in (staged / "systemctl.log").read_text()
    # The next healthy upgrade keeps the rollback in the record for the health report.
    (staged / "broken").write_text("")
    assert gate(staged, "activate", "2.0.0").returncode == 0
    assert record(staged)["running"] == "2.0.0" and record(staged)["last_rollback"]["failed_release"] == "2.0.0"


def test_a_doctor_that_says_unhealthy_rolls_back_too(staged: Path) -> None:
    settings = staged / "etc/kiosk/health-gate.toml"
    settings.write_text(settings.read_text().replace('doctor = ["true"]', 'doctor = ["false"]'))
    assert gate(staged, "activate", "2.0.0").returncode == 0
    assert current(staged) == "1.0.0"
    assert record(staged)["rollback"]["reason"] == "kiosk doctor exited 1"


def test_a_kiosk_that_is_not_running_only_switches(staged: Path) -> None:
    (staged / "state").write_text("inactive\n")
    result = gate(staged, "activate", "2.0.0")
    assert result.returncode == 0 and "it runs when rezip-kiosk.service starts" in result.stderr
    assert current(staged) == "2.0.0" and not (staged / "restarts").exists() and not (staged / "drained").exists()
    assert gate(staged, "activate", "3.0.0").returncode == 1  # not installed: refused, nothing changed
    assert current(staged) == "2.0.0"
