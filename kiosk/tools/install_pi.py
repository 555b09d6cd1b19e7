"""scripts/install-pi: install the kiosk on a Raspberry Pi from its Debian packages (or set up a
staging root).

1. The kiosk's packages (``--deb``: the two files ``make deb`` writes, rezip-kiosk-VERSION and
   rezip-kiosk), with apt, which brings what they depend on from Debian. The package makes the
   user, /var/lib/kiosk, the units and udev rules, and enables rezip-kiosk.service.
2. Our apt repository (``--repo URL``, suite bookworm or bookworm-canary), trusted through the key
   the package ships, so unattended-upgrades takes the next releases (through the health gate).
3. Debian packages for the screen and the voice (the compositor, Chromium, fonts, espeak-ng).
4. The screen: rezip-kiosk-screen.service with the chosen compositor, the Pi booting to it.
5. The data directory /var/lib/kiosk, on its own writable partition when one is given (fstab).
6. systemd-analyze verify on the kiosk's units.
7. The root filesystem made read-only (raspi-config's overlay file system) when asked and the image
   allows it.
``--root DIR`` writes the files into DIR instead of / (for images, and for the tests): nothing outside
DIR is touched, no package is installed and nothing is started.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from kiosk.tools.report import Report, ToolFailed

__all__ = ["main", "verify_units"]

UNITS = ("rezip-kiosk.service", "rezip-kiosk-screen.service")
KEYRING = "/usr/share/keyrings/rezip-kiosk-archive-keyring.gpg"
SOURCES = "etc/apt/sources.list.d/rezip-kiosk.sources"
SUITES = ("bookworm", "bookworm-canary")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="install-pi",
        description=__doc__.split("\n\n")[0],
        epilog="Example, on the Pi: sudo scripts/install-pi --deb dist/rezip-kiosk-0.1.0_0.1.0-1_arm64.deb "
        "--deb dist/rezip-kiosk_0.1.0-1_arm64.deb --repo https://apt.example.net/kiosk "
        "--data-partition /dev/mmcblk0p3 --read-only",
    )
    parser.add_argument("--root", type=Path, default=Path("/"), help="install into this root (default: %(default)s)")
    parser.add_argument(
        "--deb", type=Path, action="append", default=[], metavar="FILE", help="a package file of make deb (repeat)"
    )
    parser.add_argument("--repo", metavar="URL", help="our apt repository, for the next releases")
    parser.add_argument(
        "--suite", choices=SUITES, default="bookworm", help="bookworm-canary for canary kiosks (default: %(default)s)"
    )
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
    notes: list[str] = []
    if live and os.geteuid() != 0:
        raise ToolFailed("run as root (sudo), or give --root DIR to set up a staging root")
    apt = live and not args.no_apt and shutil.which("apt-get") is not None
    for deb in args.deb:
        if not deb.is_file():
            raise ToolFailed(f"--deb {deb}: no such file (make deb writes them into dist/)")

    report.step("The kiosk's packages")
    installed = (args.root / "lib/systemd/system/rezip-kiosk.service").exists()
    if args.deb and apt:
        files = [str(deb.resolve()) for deb in args.deb]
        _run(["apt-get", "install", "-y", "--no-install-recommends", *files], "installing the kiosk's packages")
        report.detail(f"installed {', '.join(deb.name for deb in args.deb)}")
    elif args.deb:
        report.detail(f"skipped here; on the Pi: apt-get install {' '.join(str(d) for d in args.deb)}")
    elif installed:
        report.detail("rezip-kiosk is installed")
    elif live:
        raise ToolFailed("rezip-kiosk is not installed: give --deb FILE for each of make deb's two packages")
    else:
        report.detail("not in this staging root; install rezip-kiosk there (dpkg --root) or on the Pi")

    report.step("Our apt repository")
    if args.repo:
        sources = args.root / SOURCES
        sources.parent.mkdir(parents=True, exist_ok=True)
        sources.write_text(
            "# The kiosk's releases (scripts/install-pi); unattended-upgrades takes them in the maintenance window.\n"
            f"Types: deb\nURIs: {args.repo}\nSuites: {args.suite}\nComponents: main\nSigned-By: {KEYRING}\n"
        )
        sources.chmod(0o644)
        report.detail(f"{sources}: {args.repo} {args.suite}")
    else:
        report.detail("none given (--repo URL): this kiosk is updated by hand")

    report.step("Debian packages for the screen and the voice")
    # espeak-ng is small and speaks only once [audio] is turned on; installed here so that turning
    # it on is a configuration change, not a trip to the shop with a package.
    packages = [args.compositor, "chromium", "fonts-dejavu-core", "espeak-ng"]
    if apt:
        _run(["apt-get", "install", "-y", "--no-install-recommends", *packages], "installing packages")
        report.detail(f"installed {' '.join(packages)}")
    else:
        report.detail(f"skipped; the screen needs: {' '.join(packages)}")

    report.step("The screen")
    dropin = args.root / "etc/systemd/system/rezip-kiosk-screen.service.d/compositor.conf"
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text(f"[Service]\nEnvironment=KIOSK_COMPOSITOR={args.compositor}\n")
    dropin.chmod(0o644)
    report.detail(f"{dropin}: {args.compositor}")
    systemctl = shutil.which("systemctl")
    if (args.root / "lib/systemd/system/rezip-kiosk-screen.service").exists() and systemctl:
        root_arg = [] if live else [f"--root={args.root}"]
        _run([systemctl, *root_arg, "enable", UNITS[1]], "enabling the screen")
        if live:
            _run([systemctl, "set-default", "graphical.target"], "booting to the screen")
        else:  # what set-default writes; a staging root may not hold the target's unit file itself
            default = args.root / "etc/systemd/system/default.target"
            default.unlink(missing_ok=True)
            default.symlink_to("/lib/systemd/system/graphical.target")
        report.detail(f"enabled {UNITS[1]}; boots to graphical.target")
    else:
        report.detail("the package's units are not installed here: enable rezip-kiosk-screen.service after it")

    report.step("Data directory /var/lib/kiosk")
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
        report.detail("on the root partition: give --data-partition for a read-only root")

    report.step("systemd-analyze verify")
    units = [args.root / "lib/systemd/system" / unit for unit in UNITS]
    present = [unit for unit in units if unit.exists()]
    if not present:
        report.detail("skipped: the package's units are not installed here")
    else:
        verified = verify_units(present, None if live else args.root)
        report.detail("units verified" if verified else "skipped: systemd-analyze is not installed here")

    report.step("Read-only root")
    if not args.read_only:
        report.detail("not asked (--read-only)")
    elif live and shutil.which("raspi-config"):
        if not args.data_partition:
            raise ToolFailed("--read-only needs --data-partition: the journal of vouchers must survive a reboot")
        _run(["raspi-config", "nonint", "enable_overlayfs"], "making the root file system read-only")
        report.detail("root file system read-only from the next boot (overlay); /var/lib/kiosk stays writable")
    else:
        notes.append("root stays writable: this image has no raspi-config overlay")
        report.detail(notes[-1])
    if live and systemctl:
        _run([systemctl, "daemon-reload"], "reloading systemd")
    return notes


def verify_units(units: list[Path], root: Path | None = None) -> bool:
    """``systemd-analyze verify``, where even a warning about one of these units is a failure (an
    unknown key is only a warning to systemd, and a unit that silently lacks its setting is a bug);
    False when systemd-analyze is not installed."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return False
    inside = [f"--root={root}"] if root else []
    result = subprocess.run(
        [
            analyze,
            *inside,
            "verify",
            "--man=no",
            *(str(u if root is None else "/" / u.relative_to(root)) for u in units),
        ],
        capture_output=True,
        text=True,
    )
    names = [unit.name for unit in units]
    problems = [line for line in (result.stderr + result.stdout).splitlines() if any(name in line for name in names)]
    if result.returncode != 0 or problems:
        raise ToolFailed("systemd-analyze verify: " + "; ".join(problems or [result.stderr.strip()]))
    return True


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        said = (result.stderr or result.stdout).strip().splitlines()
        raise ToolFailed(f"{what} failed: {said[-1] if said else 'exit ' + str(result.returncode)}")


if __name__ == "__main__":
    sys.exit(main())
