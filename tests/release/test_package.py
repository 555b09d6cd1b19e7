"""The Debian packages (make deb) installed, upgraded, downgraded, removed and purged in a bookworm
root made by debootstrap, and the arm64 package's contents. Slow (a build and several dpkg runs):
make test-release runs these, make test leaves them out."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from tests.release.conftest import REPO, UPSTREAM, VERSION, Release, Root, derive, members

pytestmark = pytest.mark.release
JOURNAL = "var/lib/kiosk/offline.sqlite"
AARCH64, X86_64 = 183, 62  # ELF e_machine


def make_journal(root: Root, *, forwarded: bool) -> None:
    """A journal written by the installed release itself, holding one offline voucher (forwarded or
    still waiting to be)."""
    script = (
        "from pathlib import Path; from kiosk.issuance.offline_store import open_store; "
        f"open_store(Path('/{JOURNAL}')).close()"
    )
    made = root.run("runuser", "-u", "kiosk", "--", "/opt/rezip-kiosk/current/.venv/bin/python3", "-c", script)
    assert made.returncode == 0, made.stderr
    with sqlite3.connect(root.path / JOURNAL) as db:
        db.execute(
            "INSERT INTO journal (key, code, packaging, source, voucher, created_at, forwarded_at)"
            " VALUES ('k1', 'CODE-1', 'PKG-1', 'offline', '{}', '2026-01-01T00:00:00Z', ?)",
            ("2026-01-01T00:01:00Z" if forwarded else None,),
        )
    db.close()


def journal_rows(root: Root) -> list[tuple[str, str]]:
    with sqlite3.connect(root.path / JOURNAL) as db:
        rows = db.execute("SELECT key, code FROM journal").fetchall()
    db.close()
    return rows


def current(root: Root) -> str:
    return (root.path / "opt/rezip-kiosk/current").readlink().as_posix()


def test_install_upgrade_downgrade_remove_and_purge(root: Root, debs: dict[str, Release], tmp_path: Path) -> None:
    first = debs["amd64"]
    second = derive(first, "9.9.0", tmp_path)
    root.install(first)

    # Files, modes, the user and the data folder.
    venv = root.path / f"opt/rezip-kiosk/{UPSTREAM}/.venv"
    assert stat.S_IMODE((venv / "bin/kiosk").stat().st_mode) == 0o755
    assert (venv / "bin/python3").readlink().as_posix() == "/usr/bin/python3.11"
    unit = (root.path / "lib/systemd/system/rezip-kiosk.service").read_text()
    assert "ExecStart=/opt/rezip-kiosk/current/.venv/bin/kiosk run --config /etc/kiosk/kiosk.toml" in unit
    assert "User=kiosk" in unit and "@" not in unit
    assert 'SYMLINK+="kiosk-board"' in (root.path / "lib/udev/rules.d/99-rezip-kiosk.rules").read_text()
    assert (root.path / "etc/systemd/system/multi-user.target.wants/rezip-kiosk.service").is_symlink()
    conffiles = root.run("dpkg-query", "-W", "-f=${Conffiles}", "rezip-kiosk").stdout
    assert "/etc/kiosk/kiosk.toml" in conffiles and "/etc/apt/apt.conf.d/52rezip-kiosk-unattended-upgrades" in conffiles
    data = (root.path / "var/lib/kiosk").stat()
    assert stat.S_IMODE(data.st_mode) == 0o700 and data.st_uid == root.uid("kiosk")
    version = root.run("kiosk", "--version")
    assert version.returncode == 0 and f"package {VERSION}, commit " in version.stdout, version.stderr
    assert current(root) == UPSTREAM
    make_journal(root, forwarded=False)
    journal_mode = stat.S_IMODE((root.path / JOURNAL).stat().st_mode)
    assert journal_mode == 0o600
    # A technician's edit of the configuration survives every step.
    config = root.path / "etc/kiosk/kiosk.toml"
    config.write_text(config.read_text().replace('hardware_id = "kiosk-0001"', 'hardware_id = "pi-cafe"'))

    # Upgrade: the new release beside the old one, the journal as it was.
    root.install(second)
    assert current(root) == "9.9.0"
    assert (root.path / "opt/rezip-kiosk/previous").readlink().as_posix() == UPSTREAM
    assert (root.path / f"opt/rezip-kiosk/{UPSTREAM}/.venv/bin/kiosk").exists()
    keep = (root.path / "etc/apt/apt.conf.d/51rezip-kiosk-keep-releases").read_text()
    assert '"^rezip-kiosk-9[.]9[.]0$"' in keep and f'"^rezip-kiosk-{UPSTREAM.replace(".", "[.]")}$"' in keep
    assert journal_rows(root) == [("k1", "CODE-1")]
    assert root.run("kiosk", "--version").returncode == 0

    # Downgrade: the old release's system package again; its payload was never removed.
    downgrade = root.dpkg("-i", root.put(first.system))
    assert downgrade.returncode == 0, downgrade.stderr
    assert current(root) == UPSTREAM and journal_rows(root) == [("k1", "CODE-1")]
    assert 'hardware_id = "pi-cafe"' in config.read_text()

    # Removal keeps the data; purge refuses while the offline voucher waits, and names the way out.
    removed = root.dpkg("-r", "rezip-kiosk")
    assert removed.returncode == 0, removed.stderr
    assert not (root.path / "usr/bin/kiosk").exists() and journal_rows(root) == [("k1", "CODE-1")]
    refused = root.dpkg("--purge", "rezip-kiosk")
    assert refused.returncode != 0
    assert (
        "1 offline voucher(s)" in refused.stderr and "REZIP_KIOSK_PURGE_UNFORWARDED=1 apt-get purge" in refused.stderr
    )
    assert journal_rows(root) == [("k1", "CODE-1")]
    forced = root.dpkg("--purge", "rezip-kiosk", env={"REZIP_KIOSK_PURGE_UNFORWARDED": "1"})
    assert forced.returncode == 0, forced.stderr
    assert not (root.path / "var/lib/kiosk").exists()
    assert not (root.path / "opt/rezip-kiosk/current").exists()
    # The payloads are packages of their own (apt's autoremove takes them once nothing needs them).
    for payload in (f"rezip-kiosk-{UPSTREAM}", "rezip-kiosk-9.9.0"):
        assert root.dpkg("--purge", payload).returncode == 0
    assert not (root.path / "opt/rezip-kiosk").exists()


def test_purge_goes_ahead_once_every_offline_voucher_is_forwarded(root: Root, debs: dict[str, Release]) -> None:
    root.install(debs["amd64"])
    make_journal(root, forwarded=True)
    root.dpkg("-r", "rezip-kiosk")
    purged = root.dpkg("--purge", "rezip-kiosk")
    assert purged.returncode == 0, purged.stderr
    assert not (root.path / "var/lib/kiosk").exists()


def _elf_machine(path: Path) -> int | None:
    head = path.read_bytes()[:20]
    return int.from_bytes(head[18:20], "little") if head[:4] == b"\x7fELF" else None


def test_the_arm64_package_holds_aarch64_modules_and_every_python_file(
    debs: dict[str, Release], tmp_path: Path
) -> None:
    arm = members(debs["arm64"].payload, tmp_path / "arm64")
    amd = members(debs["amd64"].payload, tmp_path / "amd64")
    site = f"opt/rezip-kiosk/{UPSTREAM}/.venv/lib/python3.11/site-packages"
    compiled = [p for p in (arm / site).rglob("*.so*") if p.is_file() and not p.is_symlink()]
    # The native modules the kiosk cannot run without (the decoder, the images, TLS keys, HTTP).
    assert {"zxingcpp", "_imaging", "_rust", "_http_parser"} <= {p.name.split(".")[0] for p in compiled}
    assert {p.relative_to(arm).as_posix(): _elf_machine(p) for p in compiled if _elf_machine(p) != AARCH64} == {}
    assert all(_elf_machine(p) == X86_64 for p in (amd / site).rglob("*.so") if p.is_file())

    def python_files(tree: Path) -> set[str]:
        return {p.relative_to(tree / site).as_posix() for p in (tree / site).rglob("*.py")}

    arm_files = python_files(arm)
    assert arm_files == python_files(amd)
    ours = {p.relative_to(REPO).as_posix() for p in (REPO / "kiosk").rglob("*.py")}
    assert ours <= arm_files
    without_bytecode = [
        name
        for name in arm_files
        if not list((arm / site / name).parent.glob(f"__pycache__/{Path(name).stem}.cpython-311.pyc"))
    ]
    assert without_bytecode == []
    assert (arm / site / "evdev").readlink().as_posix() == "/usr/lib/python3/dist-packages/evdev"
