"""scripts/provision-kiosk: make a Pi into a configured kiosk, from flags or from questions.

1. The answers (flags first; questions on a terminal for what is missing).
2. The hardware id (the Pi's serial number, else the machine id) and the device key: an ECDSA P-384
   key, 0600, kept if one exists; its public key's fingerprint is printed for registration.
3. The configuration, checked by the kiosk's own parser before it is written.
4. The backend: reached with verified TLS and the token.
5. The offline pools synced (when offline issuance is on).
6. A test ticket on the printer.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

from kiosk.config import LOCALES, PROFILES, Config, ConfigError, parse_config, render_config
from kiosk.secret_files import SecretFileError, write_secret_file
from kiosk.tools.report import Report, ToolFailed

__all__ = ["main", "hardware_id", "config_text"]

ASKED = (  # key, question, default
    ("drop_point", "RE-ZIP drop point location id", None),
    ("country", "Country (ISO 3166 alpha-2)", "DK"),
    ("locale", f"Locale ({' '.join(LOCALES)})", "da_DK"),
    ("timezone", "Time zone", "Europe/Copenhagen"),
    ("backend_url", "Backend URL", "https://api.re-zip.com"),
    ("printer", "Printer (/dev/usb/lp0, serial:/dev/..., tcp://HOST:9100, usb:VID:PID, none)", "/dev/kiosk-printer"),
    ("scanner", "Scanner (serial:/dev/..., hid:usb:VID:PID, camera:0, none)", "serial:/dev/kiosk-scanner"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="provision-kiosk",
        description="Write the kiosk's configuration, create its hardware id and device key, check the "
        "backend, sync the offline pools and print a test ticket. Missing answers are asked on a terminal.",
    )
    parser.add_argument(
        "--config", type=Path, default=Path("/etc/kiosk/kiosk.toml"), help="where to write it (default: %(default)s)"
    )
    parser.add_argument("--drop-point", dest="drop_point", help="the drop point's location id")
    parser.add_argument("--country")
    parser.add_argument("--locale", choices=LOCALES)
    parser.add_argument("--timezone")
    parser.add_argument("--backend-url", dest="backend_url")
    parser.add_argument(
        "--token-file",
        type=Path,
        help="an existing token file (mode 0600); default: ask, and keep it beside the configuration",
    )
    parser.add_argument("--token-stdin", action="store_true", help="read the token from standard input")
    parser.add_argument("--printer", help="printer device, or none")
    parser.add_argument("--printer-profile", default="TM-T20II", choices=PROFILES)
    parser.add_argument("--scanner", help="serial:DEVICE, hid:SELECTOR, camera:DEVICE or none")
    parser.add_argument("--board", help="the I/O board's data port (e.g. /dev/kiosk-board), or none")
    parser.add_argument("--slot-sensor", action="store_true", help="a drop-slot sensor is fitted to the I/O board")
    parser.add_argument("--hardware-id", help="override the id derived from the Pi's serial number")
    parser.add_argument("--data-dir", type=Path, default=Path("/var/lib/kiosk"))
    parser.add_argument("--no-offline", action="store_true", help="no offline issuance")
    parser.add_argument("--skip-print", action="store_true", help="no test ticket")
    args = parser.parse_args(argv)
    report = Report("provision-kiosk", steps=6)
    return report.run(lambda: f"kiosk {_provision(args, report).kiosk.hardware_id} is configured in {args.config}")


def _provision(args: argparse.Namespace, report: Report) -> Config:
    report.step("Answers")
    answers = _answers(args)
    report.step("Hardware id and device key")
    answers["hardware_id"] = args.hardware_id or hardware_id()
    key_path = args.config.parent / "device-key.pem"
    fingerprint, created = _device_key(key_path)
    report.detail(f"hardware id {answers['hardware_id']}")
    report.detail(f"device key {key_path} ({'new' if created else 'kept'}), public key SHA-256 {fingerprint}")
    report.step("Configuration")
    token_file = _token_file(args)
    text = config_text(
        answers,
        token_file=token_file,
        data_dir=args.data_dir,
        offline=not args.no_offline,
        printer_profile=args.printer_profile,
        board=args.board,
        slot_sensor=args.slot_sensor,
    )
    try:
        config = parse_config(tomllib.loads(text), base=args.config.parent, source=args.config)
    except ConfigError as exc:
        raise ToolFailed(f"the answers make no valid configuration: {exc}") from None
    args.config.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.config.with_suffix(".toml.new")
    temporary.write_text(text, "utf-8")
    os.replace(temporary, args.config)
    report.detail(f"written: {args.config}")
    report.step("Backend")
    report.detail(asyncio.run(_check_backend(config)))
    report.step("Offline pools")
    if config.offline.enabled:
        report.detail(asyncio.run(_sync_pools(config)))
    else:
        report.detail("offline issuance is off")
    report.step("Test ticket")
    if args.skip_print or config.printer.type == "none":
        report.detail("skipped")
    else:
        report.detail(_print_test_ticket(config))
    return config


def _answers(args: argparse.Namespace) -> dict[str, str]:
    answers: dict[str, str] = {}
    for key, question, default in ASKED:
        value = getattr(args, key)
        if value is None and sys.stdin.isatty():
            typed = input(f"      {question}{f' [{default}]' if default else ''}: ").strip()
            value = typed or default
        if value is None:
            value = default
        if value is None:
            raise ToolFailed(f"--{key.replace('_', '-')} is required (or run on a terminal to be asked)")
        answers[key] = value
    return answers


def _token_file(args: argparse.Namespace) -> Path:
    if args.token_file is not None:
        return Path(args.token_file)
    target = Path(args.config).parent / "token"
    if args.token_stdin:
        token = sys.stdin.readline().strip()
    elif sys.stdin.isatty():
        token = getpass.getpass("      RE-ZIP access token (not shown): ").strip()
    elif target.exists():
        return target
    else:
        raise ToolFailed("no token: give --token-file or --token-stdin")
    if not token:
        raise ToolFailed("the token is empty")
    write_secret_file(target, token.encode() + b"\n")
    return target


def hardware_id(cpuinfo: Path = Path("/proc/cpuinfo"), machine_id: Path = Path("/etc/machine-id")) -> str:
    """``pi-<serial>`` from a Raspberry Pi's serial number, else ``kiosk-<machine id>``."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Serial" and value.strip().strip("0"):
                return "pi-" + value.strip()[-8:].lower()
    except OSError:
        pass
    try:
        return "kiosk-" + machine_id.read_text().strip()[:12]
    except OSError:
        raise ToolFailed("cannot derive a hardware id (no Pi serial, no /etc/machine-id): give --hardware-id") from None


def _device_key(path: Path) -> tuple[str, bool]:
    from kiosk.signatures import key_fingerprint, load_or_create_key

    try:
        key, created = load_or_create_key(path)
    except (SecretFileError, ValueError) as exc:
        raise ToolFailed(str(exc)) from None
    return key_fingerprint(key), created


def config_text(
    answers: dict[str, str],
    *,
    token_file: Path,
    data_dir: Path,
    offline: bool,
    printer_profile: str,
    board: str | None,
    slot_sensor: bool,
) -> str:
    """The configuration file's text for the technician's answers."""
    printer = answers["printer"]
    scanner_type, _, scanner_device = answers["scanner"].partition(":")
    if scanner_type not in ("serial", "hid", "camera", "none"):
        raise ToolFailed(f"--scanner: {answers['scanner']!r} must start with serial:, hid: or camera:, or be none")
    doc: dict[str, dict[str, Any]] = {
        "kiosk": {
            "hardware_id": answers["hardware_id"],
            "country": answers["country"],
            "locale": answers["locale"],
            "timezone": answers["timezone"],
            "data_dir": str(data_dir),
        },
        "backend": {
            "url": answers["backend_url"],
            "drop_point_location_id": answers["drop_point"],
            "token_file": str(token_file),
        },
        "scanner": {"type": scanner_type, **({"device": scanner_device} if scanner_device else {})},
        "screen": {"type": "web", "listen": "127.0.0.1:8080"},
        "printer": {"type": "none"}
        if printer == "none"
        else {"type": "escpos", "device": printer, "profile": printer_profile},
        "offline": {"enabled": offline},
    }
    if board and board != "none":
        doc["board"] = {"type": "serial", "device": board, "slot_sensor": slot_sensor}
    elif slot_sensor:
        raise ToolFailed("--slot-sensor needs --board: the sensor is read by the I/O board")
    try:
        return render_config(
            doc, header="Written by scripts/provision-kiosk; see hardware/kiosk.example.toml for every key."
        )
    except ConfigError as exc:
        raise ToolFailed(f"the answers make no valid configuration: {exc}") from None


async def _check_backend(config: Config) -> str:
    import httpx

    from kiosk.issuance.configured import make_client

    try:
        client = make_client(config)
    except SecretFileError as exc:
        raise ToolFailed(str(exc)) from None
    backend = config.backend
    try:
        answer = await client.http.get(config.jwks_url)
    except httpx.HTTPError as exc:
        raise ToolFailed(f"cannot reach {backend.url}: {exc or type(exc).__name__}") from None
    finally:
        await client.aclose()
    if answer.status_code != 200:
        raise ToolFailed(f"{config.jwks_url} answered HTTP {answer.status_code}")
    return f"{backend.url} reachable (TLS verified), signing keys published"


async def _sync_pools(config: Config) -> str:
    """Reserve the first offline codes, as ``kiosk pools sync`` does."""
    import httpx

    from kiosk.issuance.configured import standalone_offline_service
    from kiosk.issuance.offline_pools_client import BundleRefused
    from kiosk.issuance.offline_store import open_store

    try:
        store = open_store(config.offline_db, link_schemes=config.link_schemes)
    except OSError as exc:
        raise ToolFailed(f"kiosk.data_dir: {exc}") from None
    try:
        async with standalone_offline_service(config, store) as service:
            report = await service.sync(force=True)
    except (httpx.HTTPError, BundleRefused, ValueError) as exc:
        raise ToolFailed(f"syncing the offline pools failed: {exc}") from None
    finally:
        store.close()
    return f"synced: {report.codes_added} codes reserved (bundle {report.bundle_id})"


def _print_test_ticket(config: Config) -> str:
    from kiosk.devices.printer.self_test import PrinterNotReady, print_test_ticket

    device, profile = config.printer_device, config.printer.profile
    try:
        print_test_ticket(device, profile, hardware_id=config.kiosk.hardware_id, screen_port=config.screen.address[1])
    except PrinterNotReady as exc:
        raise ToolFailed(f"printer {device} is not ready: {exc}") from None
    except OSError as exc:
        raise ToolFailed(f"printing the test ticket on {device} failed: {exc}") from None
    return f"test ticket printed on {device}, profile {profile}"


if __name__ == "__main__":
    sys.exit(main())
