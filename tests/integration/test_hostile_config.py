"""Hostile configuration and token files, through the whole program.

Hypothesis mutates a working kiosk configuration key by key (NaN, infinities, huge and negative
numbers, zero counts, strings with control characters, URLs that do not parse, wrong types, unknown
keys, missing sections): each is either refused with ``key: reason`` or accepted, and an accepted
one runs a kiosk that answers a customer's scan within its deadline. Files that are not TOML, nest
deeper than the parser goes, or are not files at all, and token files with line breaks, foreign
bytes or no end, are refused by the real command with exit 2, one line, and never the token.
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.config import Config, ConfigError, parse_config
from kiosk.runtime import open_kiosk
from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK
from kiosk.sim.kiosk_config import write_kiosk_config
from kiosk.sim.world import demo_world
from tests.conftest import run_kiosk
from tests.integration.hostile import fresh_code

pytestmark = pytest.mark.integration

EXAMPLE = tomllib.loads((Path(__file__).parents[2] / "hardware" / "kiosk.example.toml").read_text("utf-8"))
KEYS = [(section, key) for section, table in EXAMPLE.items() for key in table]
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from(
        [
            0,
            -1,
            0.0,
            -0.0,
            1e308,
            10**30,
            True,
            "",
            " ",
            "\x00",
            "a\nb",
            "\x1b[2J",
            "https://[::1",
            "https://api.re-zip.com:99999",
            "http://203.0.113.9",
            "https://user:pw@127.0.0.1",
            "http://127.0.0.1:1",
            "../../etc/passwd",
            "😀" * 300,
            "x" * 5000,
            "localhost:0",
            "[::1]:8080",
            "999.999.999.999:80",
            "usb:zz:zz",
            "tcp://",
            "Europe/Nowhere",
            "xx_XX",
            "~nosuchuser/x",
            "~",
        ]
    ),
    st.text(max_size=20),
    st.lists(st.one_of(st.text(max_size=10), st.integers()), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
KEY_LINE = re.compile(r"(\[[a-z_]+\]|[a-z_]+(\.[a-z_]+)?(\[[0-9]+\])?): .+")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    folder = Path(tmp_path_factory.mktemp("hostile-config"))
    with demo_world(folder / "world") as running:
        path = write_kiosk_config(
            folder / "kiosk" / "kiosk.toml",
            backend_url=running.url,
            token=DEMO_KIOSK_TOKEN,
            drop_point=DROP_POINT_DK,
            screen_type="none",
        )
        yield running, tomllib.loads(path.read_text("utf-8")), path.parent


def _loopback_only(config: Config) -> bool:
    """Only a configuration that talks to IP literals is run: a test never resolves a name."""
    for url in (config.backend.url, config.jwks_url):
        try:
            ipaddress.ip_address(urlsplit(url).hostname or "")
        except ValueError:
            return False
    return True


async def _serve_one_customer(config: Config) -> str:
    reports: asyncio.Queue = asyncio.Queue()
    async with open_kiosk(
        config, with_devices=False, background=False, resume=False, on_report=reports.put_nowait
    ) as kiosk:
        kiosk.app.scan(fresh_code())
        report = await asyncio.wait_for(reports.get(), config.backend.deadline_s + 2)
    return report.status


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    changes=st.lists(
        st.tuples(st.sampled_from(KEYS + [("kiosk", "colour"), ("extra", "x")]), st.one_of(VALUES, st.none())),
        min_size=1,
        max_size=3,
    )
)
def test_any_configuration_is_refused_by_key_or_serves_a_customer(world, changes: list) -> None:
    _, base, folder = world
    doc: dict[str, Any] = copy.deepcopy(base)
    for (section, key), value in changes:
        table = doc.setdefault(section, {})
        if not isinstance(table, dict):
            continue
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    try:
        config = parse_config(doc, base=folder, source=folder / "kiosk.toml")
    except ConfigError as error:
        assert KEY_LINE.fullmatch(str(error)), str(error)
        assert "\n" not in str(error) and "\x1b" not in str(error) and len(str(error)) < 400
        return
    if _loopback_only(config):
        assert asyncio.run(_serve_one_customer(config)) in ("issued", "invalid", "none_available", "failed")


NASTY_FILES = {
    "not UTF-8": b'[kiosk]\nhardware_id = "\xff\xfe"\n',
    "nested too deep": b"[kiosk]\nhardware_id = " + b"[" * 50_000 + b"]" * 50_000 + b"\n",
    "nan": b'[kiosk]\nhardware_id = "k"\n[backend]\nurl = "https://127.0.0.1"\ndrop_point_location_id = "d"\n'
    b'token_file = "token"\ndeadline_s = nan\n',
    "inf": b'[kiosk]\nhardware_id = "k"\n[backend]\nurl = "https://127.0.0.1"\ndrop_point_location_id = "d"\n'
    b'token_file = "token"\nread_timeout_s = inf\n',
    "bad url": b'[kiosk]\nhardware_id = "k"\n[backend]\nurl = "https://[::1"\ndrop_point_location_id = "d"\n'
    b'token_file = "token"\n',
    "jwks over http": b'[kiosk]\nhardware_id = "k"\n[backend]\nurl = "https://127.0.0.1"\n'
    b'drop_point_location_id = "d"\ntoken_file = "token"\n[offline]\njwks_url = "http://192.0.2.1/k"\n',
    "zero count": b'[kiosk]\nhardware_id = "k"\n[backend]\nurl = "https://127.0.0.1"\ndrop_point_location_id = "d"\n'
    b'token_file = "token"\n[offline]\nreserve_per_pool = 0\n',
}


@pytest.mark.parametrize("name", sorted(NASTY_FILES))
def test_a_nasty_file_is_one_clear_line_and_exit_2(tmp_path: Path, name: str) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_bytes(NASTY_FILES[name])
    result = run_kiosk("scan", "10HS0042", "--config", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert re.fullmatch(r"kiosk: configuration: [^\n]+\n", result.stderr), result.stderr


def test_a_config_that_is_not_a_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    result = run_kiosk("scan", "10HS0042", "--config", str(fifo), timeout=20)
    assert result.returncode == 2 and "not a regular file" in result.stderr


TOKENS = {
    "line break inside": b"tok-SECRET-123\nsecond-line-SECRET\n",
    "non-ASCII": "tok-SECRET-ø-123\n".encode(),
    "latin-1 bytes": b"tok-SECRET-\xe6\xf8\xe5\n",
    "space inside": b"tok-SECRET 123\n",
    "NUL": b"tok-SECRET\x00123",
    "escape": b"tok-SECRET\x1b[2J",
    "huge": b"tok-SECRET-" + b"A" * 100_000,
}


@pytest.mark.parametrize("name", sorted(TOKENS))
def test_a_broken_token_is_refused_without_ever_being_shown(world, tmp_path: Path, name: str) -> None:
    running, _, _ = world
    path = write_kiosk_config(
        tmp_path / "kiosk.toml", backend_url=running.url, token="x", drop_point=DROP_POINT_DK, screen_type="none"
    )
    token_file = tmp_path / "kiosk.token"
    token_file.write_bytes(TOKENS[name])
    token_file.chmod(0o600)
    for command in (["scan", fresh_code()], ["sync"], ["pools", "status"]):
        result = run_kiosk("--log-level", "debug", *command, "--config", str(path))
        assert result.returncode == 2, (command, result.stderr)
        assert "SECRET" not in result.stdout + result.stderr and "Traceback" not in result.stderr
        assert "token file" in result.stderr


def test_a_token_file_that_is_a_fifo_does_not_hang(world, tmp_path: Path) -> None:
    running, _, _ = world
    path = write_kiosk_config(
        tmp_path / "kiosk.toml", backend_url=running.url, token="x", drop_point=DROP_POINT_DK, screen_type="none"
    )
    token_file = tmp_path / "kiosk.token"
    token_file.unlink()
    os.mkfifo(token_file, 0o600)
    result = run_kiosk("scan", fresh_code(), "--config", str(path), timeout=20)
    assert result.returncode == 2 and "not a regular file" in result.stderr


def test_the_token_never_appears_in_any_output_at_debug_level(world, tmp_path: Path) -> None:
    running, _, _ = world
    path = write_kiosk_config(
        tmp_path / "kiosk.toml",
        backend_url=running.url,
        token=DEMO_KIOSK_TOKEN,
        drop_point=DROP_POINT_DK,
        screen_type="none",
    )
    outputs = []
    for command in (
        ["scan", fresh_code(), "--json"],
        ["pools", "sync"],
        ["pools", "status", "--json"],
        ["sync"],
        ["journal", "--json"],
    ):
        result = run_kiosk("--log-level", "debug", *command, "--config", str(path))
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
    assert all(DEMO_KIOSK_TOKEN not in text for text in outputs)
    assert any("HTTP Request" in text for text in outputs)  # debug logging was really on
