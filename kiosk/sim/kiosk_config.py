"""Writes a ready kiosk configuration (and its 0600 token file) for a stand-in backend."""

from __future__ import annotations

from pathlib import Path

from kiosk.secret_files import write_secret_file

__all__ = ["write_kiosk_config"]


def write_kiosk_config(
    path: Path,
    *,
    backend_url: str,
    token: str,
    drop_point: str,
    country: str = "DK",
    locale: str = "en_GB",
    timezone: str = "Europe/Copenhagen",
    scanner_device: str | None = None,
    printer_device: str = "printer.bin",
    printer_profile: str = "TM-T20II",
    screen_dir: str = "screen",
    screen_type: str = "png",
    board_device: str | None = None,
    slot_sensor: bool = False,
) -> Path:
    """Write ``path`` and ``<path>.token`` beside it; relative paths resolve against its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    token_file = path.with_name(path.stem + ".token")
    write_secret_file(token_file, token.encode() + b"\n")
    # No debounce: people typing codes into the demo repeat them on purpose.
    scanner = (
        f'type = "serial"\ndevice = "{scanner_device}"\nterminator = "any"\ndebounce_s = 0\n'
        if scanner_device
        else 'type = "none"\ndebounce_s = 0\n'  # the I/O board's scans share this filter
    )
    board = (
        f'[board]\ntype = "serial"\ndevice = "{board_device}"\nslot_sensor = {str(slot_sensor).lower()}\n'
        if board_device
        else ""
    )
    path.write_text(
        f"""# Written by the stand-in backend for a kiosk that talks to it.
[kiosk]
hardware_id = "sim-kiosk-1"
data_dir = "data"
country = "{country}"
locale = "{locale}"
timezone = "{timezone}"

[backend]
url = "{backend_url}"
drop_point_location_id = "{drop_point}"
token_file = "{token_file.name}"
deadline_s = 2.5

[scanner]
{scanner}
[screen]
type = "{screen_type}"
listen = "127.0.0.1:0"
dir = "{screen_dir}"

[offline]
# The demo world's pools are small: keep most codes for online scans.
reserve_per_pool = 5
watermark = 2

[printer]
type = "escpos"
device = "{printer_device}"
profile = "{printer_profile}"
poll_interval_s = 0.5

{board}""",
        "utf-8",
    )
    return path
