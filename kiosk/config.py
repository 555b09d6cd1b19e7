"""The kiosk's one TOML configuration file, checked key by key.

A technician edits this file by hand on a device in a shop, so every mistake must come back as one
line that names the key and says what is wrong (``backend.url: must be an https URL``). The schema is
the dataclasses below: their fields, types and defaults are the documentation that
``hardware/kiosk.example.toml`` annotates.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kiosk.core.voucher import LOOPBACK_HTTP
from kiosk.devices.printer.device import DeviceError, PrinterDevice
from kiosk.devices.scanner.keymap import LAYOUTS
from kiosk.devices.scanner.selector import HidSelector
from kiosk.toml_schema import DAY as _DAY
from kiosk.toml_schema import (
    ConfigError,
    build_document,
    check_identifier,
    check_listen,
    check_url,
    read_toml,
    render_document,
    shown,
    split_listen,
)
from kiosk.toml_schema import path_field as _path
from kiosk.toml_schema import within as _within

__all__ = [
    "Config",
    "ConfigError",
    "load_config",
    "parse_config",
    "parse_size",
    "render_config",
    "DEFAULT_CONFIG_PATH",
    "LOCALES",
    "PROFILES",
]

DEFAULT_CONFIG_PATH = Path("/etc/kiosk/kiosk.toml")
LOCALES = (
    "da_DK",
    "de_AT",
    "de_DE",
    "en_GB",
    "fr_BE",
    "fr_FR",
    "hu_HU",
    "nl_BE",
    "nl_NL",
    "sq_AL",
)
#: The printer profiles the kiosk's layout is made and tested for (python-escpos names).
PROFILES = ("TM-T20II", "POS-5890")


@dataclass(frozen=True)
class KioskSection:
    hardware_id: str
    country: str = "DK"
    locale: str = "da_DK"
    timezone: str = "Europe/Copenhagen"
    #: Languages a customer may switch to on a touch screen (the kiosk's own locale comes first).
    languages: list[str] = field(default_factory=list)
    #: Writable folder for the kiosk's state (logo cache, and later the offline journal).
    data_dir: Path = field(default=Path("/var/lib/kiosk"), metadata=_path())


@dataclass(frozen=True)
class BackendSection:
    url: str
    drop_point_location_id: str
    token_file: Path = field(metadata=_path())
    auth_scheme: Literal["Pat", "Bearer"] = "Pat"
    connect_timeout_s: float = field(default=1.0, metadata=_within(0.05, 60))
    read_timeout_s: float = field(default=2.0, metadata=_within(0.05, 120))
    deadline_s: float = field(default=2.5, metadata=_within(0.1, 60))
    ca_file: Path | None = field(default=None, metadata=_path())


@dataclass(frozen=True)
class OfflineSection:
    #: Issue from cached static-pool codes when the backend cannot answer in time.
    enabled: bool = True
    #: Codes reserved per static pool at each top-up, and the level below which to top up.
    reserve_per_pool: int = field(default=20, metadata=_within(1, 500))
    watermark: int = field(default=5, metadata=_within(0, 500))
    sync_interval_s: float = field(default=3600.0, metadata=_within(1, 7 * _DAY))
    forward_interval_s: float = field(default=10.0, metadata=_within(0.1, _DAY))
    #: Codes expiring within this many seconds are not handed out.
    expiry_margin_s: float = field(default=3600.0, metadata=_within(0, 30 * _DAY))
    #: Limits on offline issuances the backend has not taken yet, and on the time since it was heard.
    max_issuances: int = field(default=100, metadata=_within(1, 100_000))
    max_value: dict[str, int] = field(default_factory=dict)
    max_offline_age_s: float = field(default=259200.0, metadata=_within(1, 365 * _DAY))
    #: Where the backend's bundle-signing keys are published; default: the backend's own JWKS.
    jwks_url: str = ""


@dataclass(frozen=True)
class FlowSection:
    voucher_display_s: float = field(default=30.0, metadata=_within(0.1, 3600))
    notice_display_s: float = field(default=6.0, metadata=_within(0.1, 600))


@dataclass(frozen=True)
class ScannerSection:
    #: "serial" (pyserial), "hid" (a keyboard-wedge scanner through evdev), "camera" (V4L2), "none".
    type: Literal["serial", "hid", "camera", "none"] = "none"
    #: serial: a port such as /dev/serial/by-id/...; hid: usb:VID:PID, name:REGEX or an event path;
    #: camera: a V4L2 index ("0"), a device (/dev/video0) or a Motion-JPEG video file.
    device: str = "/dev/ttyACM0"
    baud: int = field(default=9600, metadata=_within(50, 4_000_000))
    terminator: Literal["cr", "lf", "crlf", "tab", "any"] = "any"
    #: Layout the HID scanner types in: "us", "de" or "da".
    keymap: str = "us"
    prefix: str = ""
    suffix: str = ""
    #: A code read again within this many seconds of its last sighting counts once.
    debounce_s: float = field(default=3.0, metadata=_within(0, 3600))
    camera_size: str = "1280x720"
    camera_fps: int = field(default=15, metadata=_within(1, 120))
    #: Hosts whose URLs in a QR code are unwrapped to the packaging code they carry ("*.host" for
    #: its subdomains); a URL of any other host is a foreign code, never sent to the backend.
    url_hosts: list[str] = field(default_factory=lambda: ["re-zip.com", "*.re-zip.com"])

    @property
    def camera_pixels(self) -> tuple[int, int]:
        return parse_size(self.camera_size)


@dataclass(frozen=True)
class ScreenSection:
    #: "web": serve the kiosk page (Chromium in kiosk mode shows it); "png": also render every frame
    #: to ``dir/screen.png`` with headless Chromium; "none": no screen.
    type: Literal["web", "png", "none"] = "web"
    listen: str = "127.0.0.1:8080"
    touch: bool = False
    size: str = "800x480"
    dir: Path = field(default=Path("/var/lib/kiosk/screen"), metadata=_path())

    @property
    def address(self) -> tuple[str, int]:
        return split_listen(self.listen)

    @property
    def pixels(self) -> tuple[int, int]:
        return parse_size(self.size)


@dataclass(frozen=True)
class PrinterSection:
    #: "escpos" for a receipt printer at ``device``, "none" for no printer.
    type: Literal["escpos", "none"] = "escpos"
    #: A file or device (/dev/usb/lp0), serial:/dev/..., tcp://HOST:PORT or usb:VID:PID.
    device: str = "/dev/usb/lp0"
    baud: int = field(default=9600, metadata=_within(50, 4_000_000))
    profile: str = "TM-T20II"
    #: Seconds between status checks of an idle printer.
    poll_interval_s: float = field(default=2.0, metadata=_within(0.1, 3600))


@dataclass(frozen=True)
class BoardSection:
    #: "serial" for the MicroPython I/O board (scanner module, drop-slot sensor, lights, buzzer) on
    #: ``device``, "none" without one.
    type: Literal["serial", "none"] = "none"
    #: The board's data port (its second USB CDC port, or a UART); prefer /dev/kiosk-board (udev).
    device: str = "/dev/kiosk-board"
    baud: int = field(default=115200, metadata=_within(50, 4_000_000))
    #: A drop-slot sensor is fitted: a voucher is issued only once the packaging passed the slot.
    slot_sensor: bool = False
    #: Seconds the customer has to drop the packaging after scanning it.
    deposit_timeout_s: float = field(default=20.0, metadata=_within(0.1, 600))


@dataclass(frozen=True)
class LinksSection:
    #: Custom app schemes (``myshopapp``) allowed in voucher links besides https.
    app_schemes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AudioSection:
    """Speech output (kiosk/devices/audio): each screen's essentials spoken with espeak-ng."""

    #: Off by default; on for installations with a speaker or a headset jack.
    enabled: bool = False
    #: "speaker": anyone near may hear, so the voucher code is never spoken, only its discount and
    #: that it is printed; "headset": a headset is present and only its wearer hears the code too.
    output: Literal["speaker", "headset"] = "speaker"
    #: Every output is private (a handset, a booth): the code is spoken whatever ``output`` says.
    always_private: bool = False
    #: espeak-ng's voice for a kiosk locale where the built-in choice will not do: "LOCALE=VOICE"
    #: items such as "fr_BE=fr-be".
    voices: list[str] = field(default_factory=list)
    #: The audio device espeak-ng plays on (its -d); empty for the system's default.
    device: str = ""
    #: Words per minute; espeak-ng's own default is 175, a little slower is easier to follow.
    rate: int = field(default=150, metadata=_within(80, 450))

    @property
    def voice_overrides(self) -> dict[str, str]:
        """``voices`` as locale → voice."""
        return dict(item.split("=", 1) for item in self.voices if "=" in item)

    @property
    def private(self) -> bool:
        """Whether the voucher code may be spoken: only a headset's wearer, or a private place, hears it."""
        return self.output == "headset" or self.always_private


@dataclass(frozen=True)
class MetricsSection:
    #: Serve Prometheus metrics at ``/metrics`` on the page server (``screen.listen``) and, when
    #: ``listen`` is set, on a server of their own at that address (for a scraper on the LAN).
    enabled: bool = True
    #: "" (the page server's address only, loopback by default) or IP:port; an address other than
    #: loopback requires ``token_file`` (a bearer token the scraper sends).
    listen: str = ""
    token_file: Path | None = field(default=None, metadata=_path())


@dataclass(frozen=True)
class HealthSection:
    #: Post the kiosk's status document to the backend (the proposed health-report API).
    enabled: bool = True
    #: Seconds between reports; a change of a device's state is reported at once as well.
    interval_s: float = field(default=300.0, metadata=_within(5, _DAY))
    #: Reports kept while the backend is away (the oldest are dropped, and counted, beyond that).
    queue_size: int = field(default=50, metadata=_within(1, 10_000))


@dataclass(frozen=True)
class WatchdogSection:
    #: Each liveness probe (flow loop, offline service, page server) must answer within this.
    probe_timeout_s: float = field(default=5.0, metadata=_within(0.1, 600))


@dataclass(frozen=True)
class Config:
    kiosk: KioskSection
    backend: BackendSection
    flow: FlowSection = field(default_factory=FlowSection)
    scanner: ScannerSection = field(default_factory=ScannerSection)
    screen: ScreenSection = field(default_factory=ScreenSection)
    printer: PrinterSection = field(default_factory=PrinterSection)
    links: LinksSection = field(default_factory=LinksSection)
    board: BoardSection = field(default_factory=BoardSection)
    offline: OfflineSection = field(default_factory=OfflineSection)
    audio: AudioSection = field(default_factory=AudioSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    health: HealthSection = field(default_factory=HealthSection)
    watchdog: WatchdogSection = field(default_factory=WatchdogSection)
    #: Where the file was read from; relative paths in it are resolved against its folder.
    source: Path | None = None

    @property
    def link_schemes(self) -> frozenset[str]:
        """The link allow-list: https, the configured app schemes, and plain http to this machine
        only for a kiosk whose backend is on loopback too (the stand-in's demo and tests)."""
        loopback = {LOOPBACK_HTTP} if self.backend.url.startswith("http:") else set()
        return frozenset({"https", *self.links.app_schemes, *loopback})

    @property
    def jwks_url(self) -> str:
        return self.offline.jwks_url or self.backend.url.rstrip("/") + "/.well-known/jwks.json"

    @property
    def offline_db(self) -> Path:
        return self.kiosk.data_dir / "offline.sqlite"

    @property
    def printer_device(self) -> PrinterDevice:
        """The printer's device; a relative file path is taken from the configuration's folder."""
        device = PrinterDevice.parse(self.printer.device, baud=self.printer.baud)
        if device.kind == "file" and self.source is not None and not Path(device.target).is_absolute():
            device = replace(device, target=str(self.source.parent / device.target))
        return device

    @property
    def languages(self) -> tuple[str, ...]:
        """The kiosk's locale first, then the other languages a customer may choose."""
        return tuple(dict.fromkeys([self.kiosk.locale, *self.kiosk.languages]))


def parse_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` (three or four digits each, such as 800x480) as numbers; ValueError if not."""
    match = re.fullmatch(r"([0-9]{3,4})x([0-9]{3,4})", text)
    if match is None:
        raise ValueError(f"must be WIDTHxHEIGHT such as 800x480, not {text!r}")
    return int(match[1]), int(match[2])


def render_config(doc: dict[str, dict[str, Any]], *, header: str) -> str:
    """A kiosk.toml's text for ``doc`` (section → key → value), every key checked against the
    schema above: the one writer the provisioning tool and the stand-ins share."""
    return render_document(Config, doc, header=header)


def load_config(path: Path) -> Config:
    """Read and check the file; every failure is a ``ConfigError`` naming the key."""
    return parse_config(read_toml(path), base=path.parent, source=path)


def parse_config(doc: dict[str, Any], *, base: Path, source: Path | None = None) -> Config:
    """Build a ``Config`` from a parsed TOML document."""
    return build_document(Config, doc, base=base, check=_check_meaning, source=source)


def _check_folder(key: str, folder: Path) -> None:
    """A folder the kiosk will create and write: neither it nor anything above it may be a file."""
    for path in (folder, *folder.parents):
        try:
            if path.exists():
                if not path.is_dir():
                    raise ConfigError(f"{key}: {path} is not a folder")
                return
        except OSError as exc:
            raise ConfigError(f"{key}: {path}: {exc.strerror or exc}") from None


def _check_meaning(config: Config) -> None:
    """Checks that span more than a type: formats, ranges, zones."""
    kiosk, backend = config.kiosk, config.backend
    for key, value in (
        ("kiosk.hardware_id", kiosk.hardware_id),
        ("backend.drop_point_location_id", backend.drop_point_location_id),
    ):
        check_identifier(key, value)
    if not re.fullmatch(r"[A-Z]{2}", kiosk.country):
        raise ConfigError(f"kiosk.country: must be an ISO 3166 alpha-2 code such as DK, not {shown(kiosk.country)}")
    if kiosk.locale not in LOCALES:
        raise ConfigError(f"kiosk.locale: must be one of {', '.join(LOCALES)}")
    try:
        ZoneInfo(kiosk.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"kiosk.timezone: unknown time zone {shown(kiosk.timezone)}") from None
    check_url("backend.url", backend.url)
    if config.offline.jwks_url:
        check_url("offline.jwks_url", config.offline.jwks_url)
    for language in kiosk.languages:
        if language not in LOCALES:
            raise ConfigError(f"kiosk.languages: {shown(language)} is not one of {', '.join(LOCALES)}")
    screen = config.screen
    check_listen("screen.listen", screen.listen, example="127.0.0.1:8080")
    for key, size, example in (
        ("screen.size", screen.size, "800x480"),
        ("scanner.camera_size", config.scanner.camera_size, "1280x720"),
    ):
        try:
            parse_size(size)
        except ValueError:
            raise ConfigError(f"{key}: must be WIDTHxHEIGHT such as {example}, not {shown(size)}") from None
    if backend.ca_file is not None and not backend.ca_file.is_file():
        raise ConfigError(f"backend.ca_file: no such file {backend.ca_file}")
    try:
        _ = config.printer_device  # parsing the device is the check
    except DeviceError as exc:
        raise ConfigError(f"printer.device: {exc}") from None
    if config.printer.profile not in PROFILES:
        raise ConfigError(f"printer.profile: {shown(config.printer.profile)} is not one of {', '.join(PROFILES)}")
    if not 1 <= config.printer.baud <= 4_000_000:
        raise ConfigError("printer.baud: must be a baud rate such as 9600 or 115200")
    for currency in config.offline.max_value:
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise ConfigError(f"offline.max_value: {shown(currency)} is not an ISO 4217 currency code")
    if config.board.slot_sensor and config.board.type == "none":
        raise ConfigError("board.slot_sensor: the drop-slot sensor is read by the I/O board; set board.type")
    if config.scanner.keymap not in LAYOUTS:
        raise ConfigError(f"scanner.keymap: must be one of {', '.join(LAYOUTS)}, not {shown(config.scanner.keymap)}")
    if config.scanner.type == "hid":
        try:
            HidSelector.parse(config.scanner.device)
        except ValueError as exc:
            raise ConfigError(f"scanner.device: {exc}") from None
    for key, folder in (("kiosk.data_dir", kiosk.data_dir), ("screen.dir", config.screen.dir)):
        _check_folder(key, folder)
    if not 1 <= config.scanner.camera_fps <= 120:
        raise ConfigError("scanner.camera_fps: must be between 1 and 120")
    if not 1 <= config.scanner.baud <= 4_000_000:
        raise ConfigError("scanner.baud: must be a baud rate such as 9600 or 115200")
    for host in config.scanner.url_hosts:
        if not re.fullmatch(
            r"(\*\.)?[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?)+", host
        ):
            raise ConfigError(
                f"scanner.url_hosts: {shown(host)} is not a host name (lower case, such as re-zip.com or *.re-zip.com)"
            )
    if len(config.scanner.prefix) > 64 or len(config.scanner.suffix) > 64:
        raise ConfigError("scanner.prefix: prefix and suffix are at most 64 characters")
    for item in config.audio.voices:
        locale, equals, voice = item.partition("=")
        if not equals:
            raise ConfigError(f"audio.voices: {shown(item)} must be LOCALE=VOICE, such as fr_BE=fr")
        if locale not in LOCALES:
            raise ConfigError(f"audio.voices: {shown(locale)} is not one of {', '.join(LOCALES)}")
        if not re.fullmatch(r"[a-z]{2,3}([-_][a-z0-9]{1,8})*(\+[a-z0-9]+)?", voice):
            raise ConfigError(f"audio.voices: {shown(voice)} is not an espeak-ng voice name such as da or fr-be")
    if not re.fullmatch(r"[\w:.,=/-]{0,120}", config.audio.device):
        raise ConfigError(f"audio.device: {shown(config.audio.device)} is not an audio device name")
    _check_metrics(config.metrics)
    for scheme in config.links.app_schemes:
        if not re.fullmatch(r"[a-z][a-z0-9+.\-]*", scheme) or scheme in {"http", "javascript", "data", "file"}:
            raise ConfigError(f"links.app_schemes: {shown(scheme)} is not an allowed app scheme")


def _check_metrics(metrics: MetricsSection) -> None:
    """Metrics leave loopback only behind a bearer token: they tell who scans how much, and when."""
    if not metrics.listen:
        return
    check_listen("metrics.listen", metrics.listen, example="127.0.0.1:9101")
    host, _ = split_listen(metrics.listen)
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback and metrics.token_file is None:
        raise ConfigError(
            "metrics.listen: an address off loopback needs metrics.token_file (a bearer token, mode 0600)"
        )
