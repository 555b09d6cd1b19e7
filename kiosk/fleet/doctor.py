"""``kiosk doctor``: the technician's self-check, one verdict line per item, exit 0 only when every
item is fine. The verdicts are ``kiosk.fleet.verdicts`` (the same the running kiosk's status
document carries); this module gathers their facts from the devices, the backend and the disk.

It asks the devices directly, so run it with the kiosk stopped for a true printer and scanner
answer (a running kiosk holds them; ``/status`` then has its own verdicts). The backend is asked
once: a health report from the doctor (``kiosk.fleet.health_client``), which proves TLS, the token
and, from the answer's ``Date``, the clock.
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import os
import shutil
import sqlite3
import ssl
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import httpx

from kiosk import __version__, build_info
from kiosk.config import DEFAULT_CONFIG_PATH, Config, ConfigError, load_config
from kiosk.devices.audio.speech import EspeakSynthesizer, SpeechError
from kiosk.devices.printer.connection import PrinterConnection
from kiosk.devices.printer.device import DeviceError
from kiosk.devices.scanner.selector import HidSelector
from kiosk.fleet.health_client import HealthReportsClient, ReportsRefused
from kiosk.fleet.verdicts import (
    Verdict,
    board_verdict,
    clock_verdict,
    disk_verdict,
    journal_verdict,
    offline_codes_verdict,
    printer_verdict,
    scanner_verdict,
)
from kiosk.issuance.configured import make_client
from kiosk.issuance.offline_store import JournalDamaged, OfflineStore
from kiosk.presentation.speech import voices_with
from kiosk.secret_files import SecretFileError, read_secret_file

__all__ = ["add_commands", "run", "examine"]


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = subparsers.add_parser(
        "doctor",
        help="check devices, backend, offline codes, journal and disk; exit 0 only when all are fine",
        description=(
            "Check each device, the backend (TLS, token, clock), the offline codes, the journal, disk space and "
            "the data partition, one verdict line per item. Exit 0 only when every item is fine, 1 otherwise."
        ),
    )
    doctor.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG_PATH, help=f"configuration file (default {DEFAULT_CONFIG_PATH})"
    )
    doctor.add_argument(
        "--scope",
        choices=["all", "release"],
        default="all",
        help="all: every item (default); release: only what a new release itself answers for (the "
        "configuration, the journal, disk and data partition), for the health gate after an upgrade: "
        "paper or the backend are not the release's fault, and the running kiosk keeps its devices",
    )
    doctor.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"kiosk: configuration: {exc}", file=sys.stderr)
        return 2
    verdicts = examine(config, scope=args.scope)
    for verdict in verdicts:
        print(verdict.line())
    return 0 if all(verdict.ok for verdict in verdicts) else 1


def examine(config: Config, *, scope: str = "all") -> list[Verdict]:
    """Every check, in the order a technician reads them; ``scope="release"`` only those a release
    answers for itself (the journal it must read, the disk and data partition it writes)."""
    verdicts = []
    if scope == "all":
        verdicts += [_printer(config), *_scanners(config), _board(config)]
        if config.audio.enabled:
            verdicts.append(_speech(config))
        verdicts += asyncio.run(_backend(config))
        verdicts += _store(config)
    else:  # a backlog or few codes left are the field's news, not the release's fault
        verdicts.append(_journal_opens(config))
    if config.metrics.token_file is not None:  # kiosk run refuses to start without it
        verdicts.append(_metrics_token(config.metrics.token_file))
    verdicts += [_disk(config.kiosk.data_dir), _data_partition(config)]
    return verdicts


def _metrics_token(path: Path) -> Verdict:
    try:
        read_secret_file(path)
    except SecretFileError as exc:
        return Verdict("metrics token", False, str(exc))
    return Verdict("metrics token", True, f"{path} is private and readable")


# --- devices ------------------------------------------------------------------------------------


def _printer(config: Config) -> Verdict:
    if config.printer.type == "none":
        return printer_verdict(None, None)
    try:
        connection = PrinterConnection(config.printer_device, config.printer.profile)
    except DeviceError as exc:
        return Verdict("printer", False, str(exc))
    try:
        status = connection.status()
    finally:
        connection.close()
    verdict = printer_verdict(status.state, status.paper_near_end)
    if not status.answered and verdict.ok:
        return Verdict("printer", True, f"{verdict.detail} (it does not answer status queries)")
    return verdict


def _scanners(config: Config) -> list[Verdict]:
    scanner = config.scanner
    if scanner.type == "none":
        return []
    if scanner.type == "hid":
        return [scanner_verdict(scanner.device, _hid_state(scanner.device))]
    device = scanner.device
    if scanner.type == "camera" and device.isdigit():
        device = f"/dev/video{device}"
    return [scanner_verdict(scanner.device, _device_state(device))]


def _board(config: Config) -> Verdict:
    if config.board.type == "none":
        return board_verdict(None)
    state = _device_state(config.board.device)
    return board_verdict(state) if state != "open" else Verdict("board", True, f"{config.board.device} present")


def _speech(config: Config) -> Verdict:
    """Whether espeak-ng has a voice for every language a customer may choose: one it lacks leaves
    that language's screens silent (the kiosk goes on; the log says so once)."""
    voices = voices_with(config.audio.voice_overrides)
    wanted = {locale: voices[locale] for locale in config.languages}
    try:
        missing = EspeakSynthesizer().missing_voices(wanted)
    except (SpeechError, OSError, subprocess.SubprocessError) as exc:
        return Verdict("speech", False, str(exc)[:200])
    if missing:
        lacking = ", ".join(f"{voice} ({locale})" for locale, voice in sorted(missing.items()))
        return Verdict("speech", False, f"espeak-ng has no voice {lacking}: those screens stay silent")
    return Verdict("speech", True, f"espeak-ng has a voice for each of the {len(wanted)} languages")


def _device_state(path: str) -> str:
    """ "open" when the device (or file) can be opened for reading, else why not."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        return "missing"
    except PermissionError:
        return "not permitted (is the user in its group?)"
    except OSError as exc:
        return exc.strerror or "cannot be opened"
    os.close(fd)
    return "open"


def _hid_state(text: str) -> str:
    selector = HidSelector.parse(text)
    try:
        import evdev
    except ImportError:
        return "evdev is not installed"
    for path in evdev.list_devices():
        try:
            device = evdev.InputDevice(path)
        except OSError:
            continue
        try:
            if selector.matches(str(device.path), str(device.name), device.info.vendor, device.info.product):
                return "open"
        finally:
            device.close()
    return "missing"


# --- backend --------------------------------------------------------------------------------------


async def _backend(config: Config) -> list[Verdict]:
    """Reachability and TLS, the token, the clock: from one health report sent by the doctor."""
    try:
        read_secret_file(config.backend.token_file)
    except SecretFileError as exc:
        return [Verdict("backend", False, "not asked: no usable token"), Verdict("token", False, str(exc))]
    try:
        client = make_client(config)
    except (ssl.SSLError, OSError, ValueError) as exc:  # a ca_file that holds no certificate, say
        return [Verdict("backend", False, f"not asked: backend.ca_file cannot be used: {exc}"[:200])]
    report = {
        "hardware_id": config.kiosk.hardware_id,
        "version": __version__,
        "commit": build_info.commit(),
        "source": "kiosk doctor",
        "sent_at": datetime.now(UTC).isoformat(),
    }
    dates: list[str] = []

    async def note_date(response: httpx.Response) -> None:
        dates.extend(response.headers.get_list("Date")[:1])  # a proxy may add its own after the origin's

    client.http.event_hooks["response"].append(note_date)
    secure = "over TLS" if config.backend.url.startswith("https:") else "(plain http)"
    try:
        await HealthReportsClient(client.http, config.backend.drop_point_location_id).send([report])
        token = Verdict("token", True, "accepted")
    except ReportsRefused as exc:
        refused = " (401)" in str(exc) or " (403)" in str(exc)
        token = Verdict("token", not refused, "refused by the backend" if refused else f"not refused ({exc})")
    except httpx.HTTPError as exc:
        return [Verdict("backend", False, _transport_problem(exc)), Verdict("token", False, "not checked")]
    finally:
        await client.aclose()
    offset = _clock_offset(dates[-1]) if dates else None
    clock = clock_verdict(offset)
    if offset is None:
        clock = Verdict("clock", False, "the backend's answer had no Date to compare with")
    return [Verdict("backend", True, f"{config.backend.url} answers {secure}"), token, clock]


def _transport_problem(exc: httpx.HTTPError) -> str:
    cause: BaseException | None = exc
    for _ in range(8):
        if cause is None:
            break
        if isinstance(cause, ssl.SSLError):
            return f"TLS failed: {getattr(cause, 'reason', None) or type(cause).__name__}"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.HTTPStatusError):
        return f"answered {exc.response.status_code}"
    return f"unreachable ({type(exc).__name__})"


def _clock_offset(date_header: str) -> float | None:
    try:
        backend = email.utils.parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return None
    if backend.tzinfo is None:
        return None
    return (datetime.now(UTC) - backend).total_seconds()


# --- offline codes, journal, disk -----------------------------------------------------------------


def _store(config: Config) -> list[Verdict]:
    if not config.offline_db.exists():
        none = offline_codes_verdict({}, enabled=config.offline.enabled, watermark=config.offline.watermark)
        return [none, Verdict("journal", True, "none yet (the kiosk has not run here)")]
    try:
        store = OfflineStore(config.offline_db, link_schemes=config.link_schemes)
    except (JournalDamaged, sqlite3.Error, OSError) as exc:
        return [Verdict("offline codes", False, "journal unreadable"), Verdict("journal", False, str(exc)[:200])]
    try:
        codes: dict[str, int] = {}
        for row in store.available():
            codes[row["shop_id"]] = codes.get(row["shop_id"], 0) + int(row["count"])
        pending = store.pending(100_000)
    finally:
        store.close()
    oldest = min((entry["issued_at"] for entry in pending), default=None)
    age = (datetime.now(UTC) - datetime.fromisoformat(oldest)).total_seconds() if oldest else None
    offline = config.offline
    return [
        offline_codes_verdict(codes, enabled=offline.enabled, watermark=offline.watermark),
        journal_verdict(len(pending), age, max_issuances=offline.max_issuances, max_age_s=offline.max_offline_age_s),
    ]


def _journal_opens(config: Config) -> Verdict:
    """The release can read the journal it finds (its schema, its integrity)."""
    if not config.offline_db.exists():
        return Verdict("journal", True, "none yet (the kiosk has not run here)")
    try:
        OfflineStore(config.offline_db, link_schemes=config.link_schemes).close()
    except (JournalDamaged, sqlite3.Error, OSError) as exc:
        return Verdict("journal", False, str(exc)[:200])
    return Verdict("journal", True, "this release reads it")


def _disk(folder: Path) -> Verdict:
    try:
        usage = shutil.disk_usage(_existing(folder))
    except OSError as exc:
        return Verdict("disk", False, exc.strerror or str(exc))
    return disk_verdict(usage.free, usage.total)


def _data_partition(config: Config) -> Verdict:
    """Mounted writable, a file written and synced there reads back, and the journal's database
    passes SQLite's quick check."""
    folder = config.kiosk.data_dir
    if not folder.is_dir():
        return Verdict("data partition", False, f"{folder} does not exist")
    if os.statvfs(folder).f_flag & os.ST_RDONLY:
        return Verdict("data partition", False, f"{folder} is mounted read-only")
    probe = folder / f".doctor-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"kiosk doctor\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        if probe.read_bytes() != b"kiosk doctor\n":
            return Verdict("data partition", False, "a file written there read back differently")
    except OSError as exc:
        return Verdict("data partition", False, f"cannot write there: {exc.strerror or exc}")
    finally:
        probe.unlink(missing_ok=True)
    if config.offline_db.exists():
        try:
            with closing(sqlite3.connect(f"file:{config.offline_db}?mode=ro", uri=True, timeout=5)) as db:
                result = db.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.Error as exc:
            return Verdict("data partition", False, f"journal check failed: {exc}")
        if result != "ok":
            return Verdict("data partition", False, f"journal damaged: {str(result)[:120]}")
    return Verdict("data partition", True, f"{folder} writable, journal intact")


def _existing(folder: Path) -> Path:
    for path in (folder, *folder.parents):
        if path.exists():
            return path
    return Path("/")
