"""scripts/provision-kiosk against the stand-in backend, and scripts/install-pi into a staging
root whose units pass systemd-analyze verify."""

from __future__ import annotations

import fnmatch
import os
import re
import runpy
import select
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from kiosk.config import load_config
from kiosk.issuance.offline_store import OfflineStore
from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK
from kiosk.tools.install_pi import verify_units
from kiosk.tools.provision import hardware_id
from kiosk.tools.report import ToolFailed
from tests.conftest import REPO

pytestmark = pytest.mark.integration


def provision(*args: str, token: str | None = DEMO_KIOSK_TOKEN) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(REPO / "scripts" / "provision-kiosk"), *args],
        input=(token or "") + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_provisioning_a_kiosk_end_to_end(backend, tmp_path: Path) -> None:
    etc = tmp_path / "etc" / "kiosk"
    printer = tmp_path / "printer.bin"
    args = [
        "--config",
        str(etc / "kiosk.toml"),
        "--drop-point",
        DROP_POINT_DK,
        "--country",
        "DK",
        "--locale",
        "da_DK",
        "--timezone",
        "Europe/Copenhagen",
        "--backend-url",
        backend.url,
        "--token-stdin",
        "--printer",
        str(printer),
        "--scanner",
        "serial:/dev/kiosk-scanner",
        "--board",
        "/dev/kiosk-board",
        "--slot-sensor",
        "--hardware-id",
        "pi-0000beef",
        "--data-dir",
        str(tmp_path / "data"),
    ]
    result = provision(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        result.stdout.strip().splitlines()[-1]
        == f"OK: provision-kiosk: kiosk pi-0000beef is configured in {etc / 'kiosk.toml'}"
    )
    for step in range(1, 7):
        assert f"[{step}/6]" in result.stdout
    config = load_config(etc / "kiosk.toml")  # the kiosk itself reads what was written
    assert config.backend.drop_point_location_id == DROP_POINT_DK and config.board.slot_sensor
    assert stat.S_IMODE((etc / "token").stat().st_mode) == 0o600
    assert stat.S_IMODE((etc / "device-key.pem").stat().st_mode) == 0o600
    assert DEMO_KIOSK_TOKEN not in result.stdout + (etc / "kiosk.toml").read_text()
    assert "test ticket printed" in result.stdout and printer.stat().st_size > 0
    store = OfflineStore(config.offline_db)
    try:
        assert sum(row["count"] for row in store.available()) > 0  # the pools were synced
    finally:
        store.close()
    key = (etc / "device-key.pem").read_bytes()
    again = provision(*args)  # provisioning twice keeps the device key
    assert again.returncode == 0 and "(kept)" in again.stdout and (etc / "device-key.pem").read_bytes() == key
    (etc / "device-key.pem").chmod(0o644)  # someone loosened it: refused, not used, not replaced
    loose = provision(*args)
    assert loose.returncode == 1 and "key file must have mode 0600" in loose.stdout
    assert (etc / "device-key.pem").read_bytes() == key


def test_a_bad_answer_or_an_unreachable_backend_is_a_clear_failure(tmp_path: Path) -> None:
    base = [
        "--config",
        str(tmp_path / "kiosk.toml"),
        "--drop-point",
        "DP1",
        "--token-stdin",
        "--skip-print",
        "--hardware-id",
        "pi-1",
        "--printer",
        "none",
        "--scanner",
        "none",
    ]
    result = provision(*base, "--country", "Denmark", "--backend-url", "https://127.0.0.1:9")
    assert result.returncode == 1 and "kiosk.country: must be an ISO 3166 alpha-2 code" in result.stdout
    assert not (tmp_path / "kiosk.toml").exists()  # nothing half-written
    result = provision(*base, "--backend-url", "http://127.0.0.1:9")
    assert result.returncode == 1 and "cannot reach http://127.0.0.1:9" in result.stdout.splitlines()[-1]
    result = provision(*base[:6], "--backend-url", "http://127.0.0.1:9", token=None)
    assert result.returncode == 1 and "the token is empty" in result.stdout


def test_hardware_id_from_the_pi_serial_or_the_machine_id(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nSerial\t\t: 10000000a1b2c3d4\nModel\t: Raspberry Pi 4\n")
    (tmp_path / "machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    assert hardware_id(tmp_path / "cpuinfo", tmp_path / "machine-id") == "pi-a1b2c3d4"
    assert hardware_id(tmp_path / "none", tmp_path / "machine-id") == "kiosk-0123456789ab"


def install(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / "scripts" / "install-pi"), *args], capture_output=True, text=True, timeout=120)


def test_install_pi_into_a_staging_root(tmp_path: Path) -> None:
    """A root without the package: the repository, the screen's compositor and the data partition
    are written, and what needs the package is named (tests/release installs it into a real root)."""
    root = tmp_path / "root"
    result = install(
        "--root", str(root), "--data-partition", "/dev/mmcblk0p3", "--compositor", "labwc", "--repo", "file:/srv/repo"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sources = (root / "etc/apt/sources.list.d/rezip-kiosk.sources").read_text()
    assert "URIs: file:/srv/repo\nSuites: bookworm\n" in sources
    assert "Signed-By: /usr/share/keyrings/rezip-kiosk-archive-keyring.gpg" in sources
    dropin = root / "etc/systemd/system/rezip-kiosk-screen.service.d/compositor.conf"
    assert "KIOSK_COMPOSITOR=labwc" in dropin.read_text()
    assert "install rezip-kiosk there" in result.stdout
    assert "enable rezip-kiosk-screen.service after it" in result.stdout
    again = install("--root", str(root), "--data-partition", "/dev/mmcblk0p3")
    assert again.returncode == 0 and (root / "etc/fstab").read_text().count("/var/lib/kiosk") == 1
    missing = install("--root", str(root), "--deb", str(tmp_path / "nothing.deb"))
    assert missing.returncode == 1 and "no such file" in missing.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_a_unit_with_a_mistake_fails_verification(tmp_path: Path) -> None:
    unit = (
        (REPO / "hardware/systemd/rezip-kiosk.service")
        .read_text()
        .replace("@PREFIX@", str(REPO))
        .replace("@USER@", "kiosk")
    )
    good, bad = tmp_path / "good" / "rezip-kiosk.service", tmp_path / "bad" / "rezip-kiosk.service"
    for path, text in ((good, unit), (bad, unit.replace("Restart=", "Restartt="))):
        path.parent.mkdir()
        path.write_text(text)
    assert verify_units([good])
    with pytest.raises(ToolFailed, match="Unknown key 'Restartt'"):  # only a warning to systemd
        verify_units([bad])


def test_the_screen_launcher_runs_chromium_in_kiosk_mode_on_the_kiosk_page() -> None:
    env = {"PATH": "/usr/bin:/bin", "KIOSK_SCREEN_PRINT": "1", "KIOSK_URL": "http://127.0.0.1:8080/"}
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed")
    for compositor, start in (("cage", "cage -d -s -- "), ("labwc", "labwc -s ")):
        result = subprocess.run(
            [str(REPO / "hardware/kiosk-screen")],
            capture_output=True,
            text=True,
            env={**env, "KIOSK_COMPOSITOR": compositor},
        )
        assert result.returncode == 0 and result.stdout.startswith(start)
        assert "--kiosk" in result.stdout and result.stdout.strip().endswith("http://127.0.0.1:8080/")
    bad = subprocess.run(
        [str(REPO / "hardware/kiosk-screen")], capture_output=True, text=True, env={**env, "KIOSK_COMPOSITOR": "weston"}
    )
    assert bad.returncode == 1 and "must be cage or labwc" in bad.stderr


def test_provisioning_by_answering_questions_on_a_terminal(backend, tmp_path: Path) -> None:
    """No flags: every answer is typed at the prompts, the token without echo."""
    master, slave = os.openpty()
    config = tmp_path / "etc" / "kiosk.toml"
    process = subprocess.Popen(
        [
            str(REPO / "scripts" / "provision-kiosk"),
            "--config",
            str(config),
            "--skip-print",
            "--hardware-id",
            "pi-cafe",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    answers = {
        "drop point location id": DROP_POINT_DK,
        "Country": "",
        "Locale": "nl_NL",
        "Time zone": "Europe/Amsterdam",
        "Backend URL": backend.url,
        "Printer": "none",
        "Scanner": "none",
        "access token": DEMO_KIOSK_TOKEN,
    }
    seen = b""
    try:
        while process.poll() is None or seen.count(b"\n") == 0:
            ready, _, _ = select.select([master], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            tail = seen.rsplit(b"\n", 1)[-1].decode(errors="replace")
            for question, answer in list(answers.items()):
                if question in tail and tail.rstrip().endswith(":"):
                    os.write(master, answer.encode() + b"\r")
                    del answers[question]
                    seen += b"\n"
                    break
    finally:
        process.wait(timeout=60)
        os.close(master)
    text = seen.decode(errors="replace")
    assert process.returncode == 0, text
    assert not answers, f"never asked: {list(answers)}"
    assert DEMO_KIOSK_TOKEN not in text  # the token is not echoed
    written = tomllib.loads(config.read_text())
    assert written["kiosk"]["country"] == "DK"  # Enter took the default
    assert written["kiosk"]["locale"] == "nl_NL" and written["backend"]["drop_point_location_id"] == DROP_POINT_DK


UDEV_KEY = re.compile(r'(?P<key>[A-Z_]+)(\{(?P<attr>[^}]+)\})?(?P<op>==|!=|\+=|:=|=)"(?P<value>[^"]*)"')
UDEV_MATCH_KEYS = {"SUBSYSTEM", "KERNEL", "ACTION", "DRIVERS", "SUBSYSTEMS"}
UDEV_ASSIGN_KEYS = {"SYMLINK", "GROUP", "MODE", "OWNER", "TAG"}


def udev_rules() -> list[list[re.Match[str]]]:
    """Each rule of our rules file as its KEY{attr}op"value" parts, each checked for udev's syntax."""
    rules = []
    for line in (REPO / "hardware/udev/99-rezip-kiosk.rules").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            parts = [UDEV_KEY.fullmatch(part.strip()) for part in line.split(", ")]
            assert all(parts), f'not KEY=="value" / KEY="value" throughout: {line!r}'
            rules.append(parts)
    return rules


def test_udev_rules_are_well_formed() -> None:
    """udevadm verify is not installed here: every rule is checked for udev's syntax instead."""
    names = set()
    for rule in udev_rules():
        matches = assigns = 0
        for found in rule:
            key, op = found["key"], found["op"]
            if op in ("==", "!="):
                assert key in UDEV_MATCH_KEYS | {"ATTRS", "ENV"}, key
                matches += 1
            else:
                assert key in UDEV_ASSIGN_KEYS | {"ENV"}, key
                assigns += 1
                if key == "SYMLINK":
                    names.add(found["value"])
                if key == "MODE":
                    assert re.fullmatch(r"0[0-7]{3}", found["value"])
        assert matches and assigns, rule
    assert {"kiosk-board", "kiosk-board-repl", "kiosk-scanner", "kiosk-printer"} <= names


def udev_names(device: dict[str, str], env: dict[str, str], parents: list[dict[str, str]]) -> set[str]:
    """The symlinks our rules give ``device`` (its own SUBSYSTEM and KERNEL, properties ``env``)
    whose ``parents`` carry sysfs attributes, evaluated as udev does: a value is a glob with "|" between
    alternatives, and every ATTRS{...} of a rule must match on one and the same parent. (udevadm
    test needs the device in sysfs, so this stands in for it.)"""

    def matches(pattern: str, value: str | None) -> bool:
        return value is not None and any(fnmatch.fnmatchcase(value, alt) for alt in pattern.split("|"))

    names = set()
    for rule in udev_rules():
        checks = [part for part in rule if part["op"] in ("==", "!=")]
        own = [part for part in checks if part["key"] != "ATTRS"]
        inherited = [part for part in checks if part["key"] == "ATTRS"]
        own_ok = all(
            matches(part["value"], env.get(part["attr"]) if part["key"] == "ENV" else device.get(part["key"]))
            == (part["op"] == "==")
            for part in own
        )
        parent_ok = not inherited or any(
            all(matches(part["value"], parent.get(part["attr"])) == (part["op"] == "==") for part in inherited)
            for parent in parents
        )
        if own_ok and parent_ok:
            names |= {part["value"] for part in rule if part["key"] == "SYMLINK"}
    return names


def pico_port(
    interface: str, product: str, id_product: str = "0005"
) -> tuple[dict[str, str], dict[str, str], list[dict[str, str]]]:
    """A ttyACM port of a device of vendor 2e8a: the tty, its properties, its USB interface and device."""
    tty = {"SUBSYSTEM": "tty", "KERNEL": "ttyACM0"}
    env = {"ID_USB_INTERFACE_NUM": interface, "ID_VENDOR_ID": "2e8a"}
    usb_interface = {"bInterfaceNumber": interface, "bInterfaceClass": "02"}
    usb_device = {
        "idVendor": "2e8a",
        "idProduct": id_product,
        "manufacturer": "MicroPython",
        "product": product,
        "serial": "e66058388344a29",
    }
    return tty, env, [usb_interface, usb_device]


def test_udev_names_only_our_board_not_any_pico() -> None:
    product = runpy.run_path(str(REPO / "firmware/board/boardcfg.py"))["USB_PRODUCT"]
    assert udev_names(*pico_port("02", product)) == {"kiosk-board"}
    assert udev_names(*pico_port("00", product)) == {"kiosk-board-repl"}
    # Other devices of vendor 2e8a: stock MicroPython (on its own or with a usb-device CDC port of
    # its own), a Pico SDK program's stdio, a board with a string close to ours.
    for foreign in ("Board in FS mode", "Pico", "RE-ZIP kiosk board 2", "re-zip kiosk board", ""):
        for interface in ("00", "02"):
            assert udev_names(*pico_port(interface, foreign)) == set(), (foreign, interface)
    assert udev_names(*pico_port("00", "Pico", id_product="000a")) == set()
    # A serial scanner is still a scanner, and never the board.
    scanner = {"SUBSYSTEM": "tty", "KERNEL": "ttyACM1"}, {"ID_USB_INTERFACE_NUM": "02"}
    assert udev_names(*scanner, [{"idVendor": "0c2e", "product": product}]) == {"kiosk-scanner"}
