"""Writes a ready kiosk configuration (and its 0600 token file) for a stand-in backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kiosk.config import render_config
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
    # No debounce: people typing codes into the demo repeat them on purpose. Without a scanner the
    # section still matters: the I/O board's scans share its filter.
    scanner: dict[str, Any] = (
        {"type": "serial", "device": scanner_device, "terminator": "any"} if scanner_device else {"type": "none"}
    )
    doc: dict[str, dict[str, Any]] = {
        "kiosk": {
            "hardware_id": "sim-kiosk-1",
            "data_dir": "data",
            "country": country,
            "locale": locale,
            "timezone": timezone,
        },
        "backend": {
            "url": backend_url,
            "drop_point_location_id": drop_point,
            "token_file": token_file.name,
            "deadline_s": 2.5,
        },
        "scanner": {**scanner, "debounce_s": 0},
        "screen": {"type": screen_type, "listen": "127.0.0.1:0", "dir": screen_dir},
        # The demo world's pools are small: keep most codes for online scans.
        "offline": {"reserve_per_pool": 5, "watermark": 2},
        "printer": {"type": "escpos", "device": printer_device, "profile": printer_profile, "poll_interval_s": 0.5},
    }
    if board_device:
        doc["board"] = {"type": "serial", "device": board_device, "slot_sensor": slot_sensor}
    path.write_text(render_config(doc, header="Written by the stand-in backend for a kiosk that talks to it."), "utf-8")
    return path
