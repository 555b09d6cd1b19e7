"""scripts/install-pi: install the kiosk as a service on a Raspberry Pi (or into a staging root).

1. Debian packages for the screen (the compositor, Chromium, fonts), when run as root on the Pi.
2. The kiosk's system user, in the groups its devices need.
3. systemd units from hardware/systemd: the kiosk (restarts on failure) and the screen.
4. udev rules from hardware/udev: /dev/kiosk-board, /dev/kiosk-scanner, /dev/kiosk-printer.
5. The data directory /var/lib/kiosk, on its own writable partition when one is given (fstab).
6. systemd-analyze verify on the installed units.
7. The services enabled, the Pi booting to the screen, and the root filesystem made read-only
   (raspi-config's overlay file system) when asked and the image allows it.
``--root DIR`` installs into DIR instead of / (for images, and for the tests): nothing outside DIR
is touched and nothing is started.
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

from kiosk.tools.report import Report, ToolFailed

__all__ = ["main"]

CHECKOUT = Path(__file__).resolve().parents[2]
UNITS = ("rezip-kiosk.service", "rezip-kiosk-screen.service")
GROUPS = ("dialout", "input", "video", "lp", "plugdev")
DATA = "var/lib/kiosk"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="install-pi",
        description=__doc__.split("\n\n")[0],
        epilog="Example, on the Pi: sudo scripts/install-pi --data-partition /dev/mmcblk0p3 --read-only",
    )
    parser.add_argument("--root", type=Path, default=Path("/"), help="install into this root (default: %(default)s)")
    parser.add_argument(
        "--prefix", type=Path, default=CHECKOUT, help="the kiosk checkout with its .venv (default: %(default)s)"
    )
    parser.add_argument("--user", default="kiosk", help="the system user the kiosk runs as (default: %(default)s)")
    parser.add_argument(
        "--compositor",
        choices=("cage", "labwc"),
        default="cage",
        help="Wayland kiosk compositor (default: %(default)s)",
    )
    parser.add_argument(
        "--data-partition", metavar="DEVICE", help="mount this writable partition at /var/lib/kiosk (fstab)"
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="make the root file system read-only (overlay) where the image allows it",
    )
    parser.add_argument("--no-apt", action="store_true", help="do not install Debian packages")
    args = parser.parse_args(argv)
    report = Report("install-pi", steps=7)

    def work() -> str:
        notes = _install(args, report)
        where = "this Pi" if args.root == Path("/") else str(args.root)
        return f"kiosk installed on {where}" + (f" ({'; '.join(notes)})" if notes else "")

    return report.run(work)


def _install(args: argparse.Namespace, report: Report) -> list[str]:
    live = args.root.resolve() == Path("/")
    is_root = os.geteuid() == 0
    notes: list[str] = []
    if live and not is_root:
        raise ToolFailed("run as root (sudo), or give --root DIR to install into a staging root")
    if not (args.prefix / ".venv" / "bin" / "kiosk").exists():
        raise ToolFailed(f"{args.prefix} has no .venv/bin/kiosk: run 'make setup' there first")

    report.step("Debian packages")
    packages = [args.compositor, "chromium", "fonts-dejavu-core"]
    if args.no_apt or not live or shutil.which("apt-get") is None:
        report.detail(f"skipped; the screen needs: {' '.join(packages)}")
    else:
        _run(["apt-get", "install", "-y", "--no-install-recommends", *packages], "installing packages")
        report.detail(f"installed {' '.join(packages)}")

    report.step(f"User {args.user}")
    try:
        pwd.getpwnam(args.user)
        report.detail("exists")
    except KeyError:
        if not live:
            report.detail("not created in a staging root; create it on the Pi (scripts/install-pi does, as root)")
        else:
            groups = ",".join(group for group in GROUPS if _group_exists(group))
            _run(["useradd", "--system", "--create-home", "--groups", groups, args.user], "creating the user")
            report.detail(f"created, groups {groups}")

    report.step("systemd units")
    unit_dir = args.root / "etc/systemd/system"
    unit_dir.mkdir(parents=True, exist_ok=True)
    installed = []
    for unit in UNITS:
        text = (CHECKOUT / "hardware/systemd" / unit).read_text("utf-8")
        text = (
            text.replace("@PREFIX@", str(args.prefix))
            .replace("@USER@", args.user)
            .replace("@COMPOSITOR@", args.compositor)
        )
        target = unit_dir / unit
        target.write_text(text, "utf-8")
        target.chmod(0o644)
        installed.append(target)
        report.detail(str(target))

    report.step("udev rules")
    rules = args.root / "etc/udev/rules.d/99-rezip-kiosk.rules"
    rules.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CHECKOUT / "hardware/udev/99-rezip-kiosk.rules", rules)
    rules.chmod(0o644)
    report.detail(str(rules))
    if live and shutil.which("udevadm"):
        _run(["udevadm", "control", "--reload-rules"], "reloading udev rules")
        _run(["udevadm", "trigger"], "applying udev rules")

    report.step("Data directory /var/lib/kiosk")
    data = args.root / DATA
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o750)
    if is_root:
        try:
            user = pwd.getpwnam(args.user)
            os.chown(data, user.pw_uid, user.pw_gid)
        except KeyError:
            pass
    if args.data_partition:
        fstab = args.root / "etc/fstab"
        line = f"{args.data_partition} /var/lib/kiosk ext4 defaults,noatime,commit=5 0 2"
        existing = fstab.read_text() if fstab.exists() else ""
        if " /var/lib/kiosk " in existing:
            report.detail("fstab already mounts /var/lib/kiosk; left as it is")
        else:
            fstab.parent.mkdir(parents=True, exist_ok=True)
            fstab.write_text(existing + ("" if existing.endswith("\n") or not existing else "\n") + line + "\n")
            report.detail(f"fstab: {line}")
    else:
        report.detail(f"{data} (on the root partition: give --data-partition for a read-only root)")

    report.step("systemd-analyze verify")
    report.detail("units verified" if verify_units(installed) else "skipped: systemd-analyze is not installed here")

    report.step("Enabling the services")
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        raise ToolFailed("systemctl is not installed")
    root_arg = [] if live else [f"--root={args.root}"]
    _run([systemctl, *root_arg, "enable", *UNITS], "enabling the units")
    if live:
        _run([systemctl, "set-default", "graphical.target"], "booting to the screen")
    else:  # what set-default writes; a staging root may not hold the target's unit file itself
        default = args.root / "etc/systemd/system/default.target"
        default.unlink(missing_ok=True)
        default.symlink_to("/lib/systemd/system/graphical.target")
    report.detail(f"enabled {', '.join(UNITS)}; boots to graphical.target")
    if args.read_only:
        if live and shutil.which("raspi-config"):
            if not args.data_partition:
                raise ToolFailed("--read-only needs --data-partition: the journal of vouchers must survive a reboot")
            _run(["raspi-config", "nonint", "enable_overlayfs"], "making the root file system read-only")
            report.detail("root file system read-only from the next boot (overlay); /var/lib/kiosk stays writable")
        else:
            notes.append("root stays writable: this image has no raspi-config overlay")
            report.detail(notes[-1])
    if live:
        _run([systemctl, "daemon-reload"], "reloading systemd")
    return notes


def verify_units(units: list[Path]) -> bool:
    """``systemd-analyze verify``, where even a warning about one of these units is a failure (an
    unknown key is only a warning to systemd, and a unit that silently lacks its setting is a bug);
    False when systemd-analyze is not installed."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return False
    result = subprocess.run([analyze, "verify", "--man=no", *map(str, units)], capture_output=True, text=True)
    names = [unit.name for unit in units]
    problems = [line for line in (result.stderr + result.stdout).splitlines() if any(name in line for name in names)]
    if result.returncode != 0 or problems:
        raise ToolFailed("systemd-analyze verify: " + "; ".join(problems or [result.stderr.strip()]))
    return True


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        said = (result.stderr or result.stdout).strip().splitlines()
        raise ToolFailed(f"{what} failed: {said[-1] if said else 'exit ' + str(result.returncode)}")


if __name__ == "__main__":
    sys.exit(main())
