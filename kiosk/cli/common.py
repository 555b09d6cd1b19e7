"""What the commands share: configuration arguments, loading, the journal, table layout."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from kiosk.config import DEFAULT_CONFIG_PATH, Config, ConfigError, load_config
from kiosk.presentation.terminal import one_line
from kiosk.secret_files import SecretFileError

if TYPE_CHECKING:
    from kiosk.issuance.offline import OfflineService
    from kiosk.issuance.offline_store import OfflineStore
    from kiosk.shop.config import ShopConfig

    #: The ``kiosk`` parser's sub-commands, to which each command group adds its own.
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]


class Failure(Exception):
    """A problem the user can fix; its message goes to stderr and the exit code is 2."""


def config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG_PATH, help=f"configuration file (default {DEFAULT_CONFIG_PATH})"
    )


def load(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise Failure(f"configuration: {exc}") from None


def shop_config_arg(parser: argparse.ArgumentParser) -> None:
    from kiosk.shop.config import DEFAULT_SHOP_CONFIG_PATH

    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_SHOP_CONFIG_PATH,
        help=f"the shop's configuration (default {DEFAULT_SHOP_CONFIG_PATH})",
    )


def load_shop(path: Path) -> ShopConfig:
    from kiosk.shop.config import load_shop_config

    try:
        return load_shop_config(path)
    except ConfigError as exc:
        raise Failure(f"configuration: {exc}") from None


def plural(number: int, noun: str) -> str:
    """ "1 code", "3 codes"."""
    return f"{number} {noun}" + ("" if number == 1 else "s")


def aligned(rows: Iterable[Sequence[str]], indent: str = "") -> list[str]:
    """Rows of text fields as lines, each column as wide as its widest field."""
    cells = [[one_line(field) for field in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(cells[0]))] if cells else []
    return [
        indent + "  ".join(field.ljust(width) for field, width in zip(row, widths, strict=False)).rstrip()
        for row in cells
    ]


def local_time(stamp: str | None, zone: str) -> str:
    """A stored UTC timestamp as the kiosk's local time ("2026-12-01 10:01:22 CET"), or "never"."""
    if stamp is None:
        return "never"
    return datetime.fromisoformat(stamp).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def open_store(config: Config) -> OfflineStore:
    """The kiosk's journal for a command that reads it; a damaged one is reported, not replaced
    (``kiosk run`` sets it aside and begins a new one)."""
    from kiosk.issuance import offline_store

    try:
        return offline_store.open_store(config.offline_db, link_schemes=config.link_schemes)
    except OSError as exc:  # JournalDamaged, or a data folder the kiosk may not write
        raise Failure(f"kiosk.data_dir: {exc}") from None


@contextlib.asynccontextmanager
async def offline_service(config: Config, store: OfflineStore) -> AsyncIterator[OfflineService]:
    """The offline service for a command; a token file that cannot be read is the user's to fix."""
    from kiosk.issuance.configured import standalone_offline_service

    try:
        async with standalone_offline_service(config, store) as service:
            yield service
    except SecretFileError as exc:
        raise Failure(str(exc)) from None
