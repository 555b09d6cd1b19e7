"""shop.toml: the annotated example loads, every key is checked as the kiosk's own are, and any
mutation of a working file is refused as ``key: reason`` or makes a configuration that fills its
templates into links the kiosk keeps."""

from __future__ import annotations

import copy
import os
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kiosk.config
from kiosk.core.urls import url_problem
from kiosk.core.voucher import MAX_LINK_BYTES, parse_voucher
from kiosk.secret_files import SecretFileError
from kiosk.shop.config import ConfigError, load_shop_config, parse_shop_config
from tests.conftest import REPO

EXAMPLE_PATH = REPO / "hardware" / "shop.example.toml"
EXAMPLE = tomllib.loads(EXAMPLE_PATH.read_text("utf-8"))
MINIMAL: dict[str, dict[str, Any]] = {
    "server": {"public_url": "https://shop.example.com"},
    "rezip": {"shop_id": "shop-1", "token_file": "rezip.token"},
    "voucherify": {"app_id": "app-1", "app_token_file": "voucherify.token", "campaign": "RE-ZIP returns"},
    "voucher": {"currency": "DKK", "landing_url": "https://shop.example.com/cart?discount={code}"},
}
KEY_LINE = re.compile(r"(\[[a-z_]+\]|[a-z_]+(\.[a-z_]+)?(\[[0-9]+\])?): [^\n]+")


def changed(section: str, **values: Any) -> dict[str, Any]:
    doc = copy.deepcopy(MINIMAL)
    doc[section].update(values)
    return doc


def test_the_annotated_example_loads() -> None:
    config = load_shop_config(EXAMPLE_PATH)
    assert config.webhook_url == "https://shop.example.com/rezip/voucher"
    assert config.address == ("127.0.0.1", 8090)
    assert config.rezip.token_file == Path("/etc/kiosk/shop-rezip.token")
    assert config.voucher.currency == "DKK" and config.voucherify.campaign == "RE-ZIP returns"
    assert config.link_for("HS-1234") == "https://shop.example.com/redeem?code=HS-1234"


def test_the_example_names_every_key_of_the_schema() -> None:
    """The example is the reference: every key the schema knows is shown (and so explained) there."""
    config = load_shop_config(EXAMPLE_PATH)
    for section in ("server", "rezip", "voucherify", "voucher", "export"):
        assert set(EXAMPLE[section]) == set(vars(getattr(config, section))), section


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    config = parse_shop_config(MINIMAL, base=tmp_path)
    assert config.rezip.token_file == tmp_path / "rezip.token"
    assert config.rezip.jwks_url == "https://webhook.re-zip.com/.well-known/jwks.json"
    assert config.voucherify.url == "https://api.voucherify.io"
    assert config.server.path == "/rezip/voucher" and config.server.deadline_s == 1.2
    assert config.rezip.signature_window_s == 300 and config.rezip.static_pool_id == ""
    assert config.voucher.link_template == "{public_url}/redeem?code={code}"


def test_the_public_url_is_where_every_public_address_starts(tmp_path: Path) -> None:
    config = parse_shop_config(
        changed("server", public_url="https://shop.example.com/bridge/", path="/hook"), base=tmp_path
    )
    assert config.webhook_url == "https://shop.example.com/bridge/hook"
    assert config.link_for("A") == "https://shop.example.com/bridge/redeem?code=A"


def test_the_code_is_percent_encoded_in_links(tmp_path: Path) -> None:
    config = parse_shop_config(MINIMAL, base=tmp_path)
    link = config.link_for("AB/C+D#E=F:G")
    assert link == "https://shop.example.com/redeem?code=AB%2FC%2BD%23E%3DF%3AG"
    assert parse_qs(urlsplit(link).query) == {"code": ["AB/C+D#E=F:G"]}
    assert config.landing_for("a&b") == "https://shop.example.com/cart?discount=a%26b"


def test_loopback_may_be_plain_http(tmp_path: Path) -> None:
    doc = changed("server", public_url="http://127.0.0.1:8090")
    doc["voucherify"]["url"] = "http://127.0.0.1:9000"
    doc["rezip"]["jwks_url"] = "http://[::1]:8000/.well-known/jwks.json"
    doc["voucher"]["landing_url"] = "http://localhost:8000/cart/{code}"
    config = parse_shop_config(doc, base=tmp_path)
    assert config.link_for("X") == "http://127.0.0.1:8090/redeem?code=X"


@pytest.mark.parametrize(
    "doc, message",
    [
        ({k: v for k, v in MINIMAL.items() if k != "voucher"}, "[voucher]: section is required"),
        ({**MINIMAL, "extra": {}}, "extra: unknown key"),
        (changed("server", colour="red"), "server.colour: unknown key"),
        (changed("server", public_url="http://shop.example.com"), "server.public_url: must be https"),
        (changed("server", public_url="https://user:pw@shop.example.com"), "server.public_url: must not carry"),
        (changed("server", public_url="https://shop.example.com/?a=1"), "server.public_url: must not hold a query"),
        (changed("server", public_url="https://shop.example.com/#x"), "server.public_url: must not hold a query"),
        (changed("server", listen="shop.example.com:80"), "server.listen: must be IP:port"),
        (changed("server", listen="127.0.0.1:70000"), "server.listen: must be IP:port"),
        (changed("server", path="rezip"), "server.path: must be a path"),
        (changed("server", path="/a b"), "server.path: must be a path"),
        (changed("server", path="/a//b"), "server.path: must be a path"),
        (changed("server", path="/redeem"), "server.path: /redeem is one of the service's own paths"),
        (changed("server", path="/healthz"), "server.path: /healthz is one of the service's own paths"),
        (changed("server", deadline_s=float("nan")), "server.deadline_s: must be a number of seconds"),
        (changed("server", deadline_s=float("inf")), "server.deadline_s: must be a number of seconds"),
        (changed("server", deadline_s=0), "server.deadline_s: must be a number of seconds from 0.1 to 30"),
        (changed("server", workers=0), "server.workers: must be"),
        (changed("server", workers=17), "server.workers: must be"),
        (changed("server", workers=1.5), "server.workers: must be"),
        (
            changed("server", workers=4, link_checks_per_minute=3),
            "server.workers: 4 workers cannot share out 3 link checks a minute",
        ),
        (changed("rezip", shop_id="shop 1"), "rezip.shop_id: must be 1-128 letters"),
        (changed("rezip", static_pool_id="pool/1"), "rezip.static_pool_id: must be 1-128 letters"),
        (changed("rezip", jwks_url="ftp://re-zip.com/jwks"), "rezip.jwks_url: must be an https URL"),
        (changed("rezip", api_url="https://[::1"), "rezip.api_url: is not a well-formed URL"),
        (changed("rezip", auth_scheme="Basic"), "rezip.auth_scheme: must be one of 'Bearer', 'Pat'"),
        (changed("rezip", signature_window_s=-300), "rezip.signature_window_s: must be a number of seconds"),
        (changed("rezip", jwks_refetch_interval_s=0), "rezip.jwks_refetch_interval_s: must be a number"),
        (changed("rezip", token_file="a\x00b"), "rezip.token_file: must be one line"),
        (changed("voucherify", app_id="app id"), "voucherify.app_id: must be 1-128 letters"),
        (changed("voucherify", campaign=" "), "voucherify.campaign: required"),
        (changed("voucherify", campaign="a\x1b[2Jb"), "voucherify.campaign: must be one line"),
        (changed("voucherify", url="https://api.voucherify.io/v1"), "voucherify.url: must be the cluster's address"),
        (changed("voucherify", url="http://api.voucherify.io"), "voucherify.url: must be https"),
        (changed("voucher", currency="dkk"), "voucher.currency: must be an ISO 4217 code in use"),
        (changed("voucher", currency="XAU"), "voucher.currency: must be an ISO 4217 code in use"),
        (changed("voucher", currency="DEM"), "voucher.currency: must be an ISO 4217 code in use"),
        (changed("voucher", conditions=7), "voucher.conditions: must be a non-empty string"),
        (changed("voucher", link_template="{public_url}/redeem"), "voucher.link_template: must hold {code}"),
        (
            changed("voucher", link_template="{public_url}/r?c={code}&u={user}"),
            "voucher.link_template: may hold only the placeholders {public_url} and {code}, not {user}",
        ),
        (changed("voucher", link_template="{public_url}/r?c={code!r}"), "voucher.link_template: may hold only"),
        (changed("voucher", link_template="{public_url}/r?c={code:>9}"), "voucher.link_template: may hold only"),
        (changed("voucher", link_template="{public_url}/r?c={}"), "voucher.link_template: may hold only"),
        (changed("voucher", link_template="{public_url}/r?c={code.real}"), "voucher.link_template: may hold only"),
        (changed("voucher", link_template="{public_url}/r?c={code"), "voucher.link_template: has a { or }"),
        (
            changed("voucher", link_template="https://{code}.shop.example.com/"),
            "voucher.link_template: {code} must come after the host",
        ),
        (
            changed("voucher", link_template="http://shop.example.com/r?c={code}"),
            "voucher.link_template: filled in, must be https",
        ),
        (
            changed("voucher", link_template="javascript:alert({code})"),
            "voucher.link_template: filled in, must be an https URL",
        ),
        (
            changed("voucher", link_template="{public_url}/" + "x" * 300 + "?c={code}"),
            f"voucher.link_template: a link with a 64-character code must fit the {MAX_LINK_BYTES} bytes",
        ),
        (changed("voucher", landing_url="https://shop.example.com/cart"), "voucher.landing_url: must hold {code}"),
        (
            changed("voucher", landing_url="http://shop.example.com/c?d={code}"),
            "voucher.landing_url: filled in, must be https",
        ),
    ],
)
def test_refusals_name_the_key(tmp_path: Path, doc: dict, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_shop_config(doc, base=tmp_path)
    assert str(refused.value).startswith(message), str(refused.value)
    assert KEY_LINE.fullmatch(str(refused.value))


def test_required_keys(tmp_path: Path) -> None:
    for section, table in MINIMAL.items():
        for key in table:
            doc = copy.deepcopy(MINIMAL)
            del doc[section][key]
            with pytest.raises(ConfigError, match=rf"^{section}\.{key}: required"):
                parse_shop_config(doc, base=tmp_path)


def test_both_configurations_raise_the_same_error() -> None:
    """The command catches one error for either file."""
    assert kiosk.config.ConfigError is ConfigError


def test_a_file_that_is_not_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "shop.toml"
    path.write_bytes(b"[server\n")
    with pytest.raises(ConfigError, match=r"shop\.toml: not valid TOML"):
        load_shop_config(path)


def _write_tokens(folder: Path, mode: int = 0o600) -> None:
    for name, token in (("rezip.token", "rezip-SECRET-1"), ("voucherify.token", "vf-SECRET-2")):
        (folder / name).write_text(token + "\n")
        os.chmod(folder / name, mode)


def test_secrets_come_from_private_files_and_stay_out_of_repr(tmp_path: Path) -> None:
    _write_tokens(tmp_path)
    secrets = parse_shop_config(MINIMAL, base=tmp_path).read_secrets()
    assert (secrets.rezip_token, secrets.voucherify_app_token) == ("rezip-SECRET-1", "vf-SECRET-2")
    assert "SECRET" not in repr(secrets)


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    _write_tokens(tmp_path, mode=0o640)
    with pytest.raises(SecretFileError, match="must have mode 0600") as refused:
        parse_shop_config(MINIMAL, base=tmp_path).read_secrets()
    assert "SECRET" not in str(refused.value)


VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from(
        [
            0,
            -1,
            True,
            "",
            " ",
            "\x00",
            "a\nb",
            "\x1b[2J",
            "https://[::1",
            "http://203.0.113.9",
            "https://user:pw@127.0.0.1",
            "http://127.0.0.1:1",
            "../../etc/passwd",
            "😀" * 300,
            "x" * 5000,
            "localhost:0",
            "[::1]:8080",
            "~nosuchuser/x",
            "{code}",
            "{public_url}",
            "{public_url}/r?c={code}",
            "https://{code}.example.com",
            "{",
            "}",
            "{0}",
            "{code!s}",
            "https://shop.example.com/c/{code}",
            "EUR",
            "eur",
            "XXX",
            "/rezip/voucher",
            "/redeem",
            "Bearer",
            "Pat",
            "https://api.voucherify.io/",
            "https://x.example/?q={code}#f",
        ]
    ),
    st.text(max_size=30),
    st.lists(st.text(max_size=10), max_size=3),
)
KEYS = [(section, key) for section, table in EXAMPLE.items() for key in table]


@settings(max_examples=1000, deadline=None)
@given(
    changes=st.lists(
        st.tuples(st.sampled_from(KEYS + [("server", "colour"), ("extra", "x")]), st.one_of(VALUES, st.none())),
        min_size=1,
        max_size=3,
    )
)
def test_any_shop_file_is_refused_by_key_or_makes_links_the_kiosk_keeps(changes: list) -> None:
    doc: dict[str, Any] = copy.deepcopy(EXAMPLE)
    for (section, key), value in changes:
        table = doc.setdefault(section, {})
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    try:
        config = parse_shop_config(doc, base=Path("/etc/kiosk"))
    except ConfigError as error:
        assert KEY_LINE.fullmatch(str(error)), str(error)
        assert len(str(error)) < 400
        return
    for code in ("HS-1234ABCD", "A" * 64, "a/b+c#d=e:f"):
        link, landing = config.link_for(code), config.landing_for(code)
        assert url_problem(link) is None and url_problem(landing) is None
        voucher = parse_voucher(
            {
                "code": code,
                "link": link,
                "type": "percentage",
                "value": 20,
                "unit": "%",
                "conditions": "",
                "expires_at": None,
            }
        )
        # Plain http (loopback only: tests and the demo) is a link no kiosk shows; every https one is kept.
        assert voucher.link == link or urlsplit(link).hostname in ("127.0.0.1", "::1", "localhost")
    assert url_problem(config.webhook_url) is None
