"""``kiosk shop check``, the real command: a good file and its tokens are reported (never the
tokens), and a bad file, a broken or loose token file is one line on stderr and exit 2."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import REPO, run_kiosk

pytestmark = pytest.mark.integration

REZIP_TOKEN = "rezip-SECRET-token-1"
VOUCHERIFY_TOKEN = "voucherify-SECRET-token-2"
TILL_TOKEN = "till-SECRET-token-3"


@pytest.fixture
def shop_file(tmp_path: Path) -> Path:
    """The annotated example, with its token files beside it."""
    text = (REPO / "hardware" / "shop.example.toml").read_text("utf-8").replace("/etc/kiosk/", "")
    path = tmp_path / "shop.toml"
    path.write_text(text, "utf-8")
    for name, token in (
        ("shop-rezip.token", REZIP_TOKEN),
        ("voucherify.token", VOUCHERIFY_TOKEN),
        ("shop-till.token", TILL_TOKEN),
    ):
        (tmp_path / name).write_text(token + "\n")
        (tmp_path / name).chmod(0o600)
    return path


def test_a_good_file_is_reported_without_its_tokens(shop_file: Path) -> None:
    result = run_kiosk("--log-level", "debug", "shop", "check", "--config", str(shop_file))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{shop_file}: the configuration is good"
    assert re.fullmatch(r"  webhook +https://shop\.example\.com/rezip/voucher \(.+\)", lines[1])
    assert "https://shop.example.com/redeem?code=EXAMPLE (this service's redeem page" in result.stdout
    assert "https://shop.example.com/cart?discount=EXAMPLE" in result.stdout
    assert "campaign 'RE-ZIP returns'" in result.stdout and "amounts in DKK" in result.stdout
    assert "SECRET" not in result.stdout + result.stderr


def test_a_link_elsewhere_is_said_not_to_be_single_use(shop_file: Path) -> None:
    text = shop_file.read_text("utf-8").replace('"{public_url}/redeem?code={code}"', '"https://go.example.com/{code}"')
    shop_file.write_text(text, "utf-8")
    result = run_kiosk("shop", "check", "--config", str(shop_file))
    assert result.returncode == 0, result.stderr
    assert (
        "https://go.example.com/EXAMPLE (not this service's redeem page: nothing here stops a second use)"
        in result.stdout
    )


@pytest.mark.parametrize(
    "old, new, message",
    [
        ('currency = "DKK"', 'currency = "XAU"', "voucher.currency: must be an ISO 4217 code in use"),
        ("deadline_s = 1.2", "deadline_s = nan", "server.deadline_s: must be a number of seconds"),
        (
            'public_url = "https://shop.example.com"',
            'public_url = "http://203.0.113.9"',
            "server.public_url: must be https",
        ),
        (
            '"{public_url}/redeem?code={code}"',
            '"{public_url}/redeem?code=\\u001b[2J"',
            "voucher.link_template: must be one line",
        ),
        ("[voucher]", "[voucher]\nextra = 1", "voucher.extra: unknown key"),
        ("[server]", "[server\n", "not valid TOML"),
    ],
)
def test_a_bad_file_is_one_line_and_exit_2(shop_file: Path, old: str, new: str, message: str) -> None:
    text = shop_file.read_text("utf-8")
    assert old in text
    shop_file.write_text(text.replace(old, new, 1), "utf-8")
    result = run_kiosk("shop", "check", "--config", str(shop_file))
    assert result.returncode == 2 and result.stdout == ""
    assert re.fullmatch(r"kiosk: configuration: [^\n]+\n", result.stderr), result.stderr
    assert message in result.stderr and "\x1b" not in result.stderr


@pytest.mark.parametrize(
    "content, mode, message",
    [
        (b"rezip-SECRET\nsecond-SECRET\n", 0o600, "line break, space or control character"),
        ("rezip-SECRET-ø\n".encode(), 0o600, "not ASCII"),
        (b"rezip-SECRET\x1b[2J", 0o600, "line break, space or control character"),
        (b"", 0o600, "token file is empty"),
        (REZIP_TOKEN.encode(), 0o644, "must have mode 0600"),
    ],
)
def test_a_broken_token_file_is_refused_without_being_shown(
    shop_file: Path, content: bytes, mode: int, message: str
) -> None:
    token = shop_file.parent / "shop-rezip.token"
    token.write_bytes(content)
    os.chmod(token, mode)
    result = run_kiosk("shop", "check", "--config", str(shop_file))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr and str(token) in result.stderr
    assert "SECRET" not in result.stdout + result.stderr


def test_a_missing_file_is_exit_2(tmp_path: Path) -> None:
    result = run_kiosk("shop", "check", "--config", str(tmp_path / "nowhere.toml"))
    assert result.returncode == 2 and "nowhere.toml: cannot read" in result.stderr
