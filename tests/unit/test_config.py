from pathlib import Path

import pytest

from kiosk.config import ConfigError, load_config, parse_config
from tests.conftest import REPO, run_kiosk

EXAMPLE = REPO / "hardware" / "kiosk.example.toml"
MINIMAL = {
    "kiosk": {"hardware_id": "k1"},
    "backend": {"url": "https://api.re-zip.com", "drop_point_location_id": "dp", "token_file": "token"},
}


def test_the_annotated_example_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.kiosk.locale == "da_DK"
    assert config.backend.token_file == Path("/etc/kiosk/token")
    assert config.printer.profile == "TM-T20II"
    assert config.link_schemes == frozenset({"https"})
    assert not config.audio.enabled and not config.audio.private  # speech is off unless asked for


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    config = parse_config(MINIMAL, base=tmp_path)
    assert config.backend.token_file == tmp_path / "token"
    assert config.backend.deadline_s == 2.5
    assert config.screen.dir == Path("/var/lib/kiosk/screen")
    assert str(config.printer_device) == "/dev/usb/lp0"
    assert config.scanner.type == "none"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"kiosk": {"hardware_id": "k1", "colour": "red"}}, "kiosk.colour: unknown key"),
        ({"kiosk": {}}, "kiosk.hardware_id: required"),
        ({"kiosk": {"hardware_id": 7}}, "kiosk.hardware_id: must be a non-empty string"),
        ({"kiosk": {"hardware_id": "k", "locale": "en_US"}}, "kiosk.locale: must be one of"),
        ({"kiosk": {"hardware_id": "k", "country": "Denmark"}}, "kiosk.country:"),
        ({"kiosk": {"hardware_id": "k", "timezone": "Mars/Olympus"}}, "kiosk.timezone: unknown time zone"),
        ({"backend": {**MINIMAL["backend"], "url": "http://api.re-zip.com"}}, "backend.url: must be https"),
        ({"backend": {**MINIMAL["backend"], "auth_scheme": "Basic"}}, "backend.auth_scheme: must be one of"),
        (
            {"backend": {**MINIMAL["backend"], "deadline_s": -1}},
            "backend.deadline_s: must be a number of seconds from 0.1 to 60",
        ),
        (
            {"backend": {**MINIMAL["backend"], "deadline_s": float("nan")}},
            "backend.deadline_s: must be a number of seconds",
        ),
        (
            {"backend": {**MINIMAL["backend"], "read_timeout_s": float("inf")}},
            "backend.read_timeout_s: must be a number",
        ),
        ({"backend": {**MINIMAL["backend"], "connect_timeout_s": 0}}, "backend.connect_timeout_s: must be a number of"),
        ({"backend": {**MINIMAL["backend"], "url": "https://[::1"}}, "backend.url: is not a well-formed URL"),
        (
            {"backend": {**MINIMAL["backend"], "url": "https://api.re-zip.com:99999"}},
            "backend.url: is not a well-formed URL",
        ),
        ({"backend": {**MINIMAL["backend"], "url": "https://user:pw@api.re-zip.com"}}, "backend.url: must not carry"),
        ({"backend": {**MINIMAL["backend"], "token_file": "tok\x00en"}}, "backend.token_file: must be one line"),
        ({"backend": {**MINIMAL["backend"], "drop_point_location_id": "dp/../x"}}, "backend.drop_point_location_id:"),
        ({"kiosk": {"hardware_id": "k 1\x1b[2J"}}, "kiosk.hardware_id:"),
        (
            {"backend": {**MINIMAL["backend"], "token_file": "~nosuchuser/token"}},
            "backend.token_file: '~nosuchuser' is not a home folder here",
        ),  # found by scripts/fuzz
        ({"offline": {"jwks_url": "http://keys.example/jwks.json"}}, "offline.jwks_url: must be https"),
        ({"offline": {"jwks_url": "https://[bad"}}, "offline.jwks_url: is not a well-formed URL"),
        ({"offline": {"reserve_per_pool": 0}}, "offline.reserve_per_pool: must be a whole number from 1 to 500"),
        ({"offline": {"max_issuances": -5}}, "offline.max_issuances: must be a whole number from 1"),
        ({"offline": {"watermark": 10**30}}, "offline.watermark: must be a whole number from 0 to 500"),
        ({"offline": {"max_value": {"DKK": -1}}}, "offline.max_value: must be a table of whole numbers"),
        ({"offline": {"sync_interval_s": 1e308}}, "offline.sync_interval_s: must be a number of seconds from 1 "),
        ({"flow": {"voucher_display_s": 0}}, "flow.voucher_display_s: must be a number of seconds from 0.1"),
        ({"board": {"baud": 0}}, "board.baud: must be a whole number from 50"),
        ({"scanner": {"debounce_s": -0.0001}}, "scanner.debounce_s: must be a number of seconds from 0"),
        ({"scanner": {"url_hosts": ["RE-ZIP.com"]}}, "scanner.url_hosts: 'RE-ZIP.com' is not a host name"),
        ({"screen": {"listen": "kiosk.local:8080"}}, "screen.listen: must be IP:port"),
        ({"scanner": {"baud": "fast"}}, "scanner.baud: must be a whole number"),
        ({"scanner": {"terminator": "semicolon"}}, "scanner.terminator: must be one of"),
        ({"links": {"app_schemes": ["javascript"]}}, "links.app_schemes:"),
        ({"printer": {"device": "tcp://"}}, "printer.device: 'tcp://': expected tcp://HOST:PORT"),
        ({"printer": {"device": "usb:epson"}}, "printer.device: 'usb:epson': expected usb:VID:PID"),
        ({"printer": {"profile": "TM-U220"}}, "printer.profile: 'TM-U220' is not one of"),
        ({"screen": {"listen": "8080"}}, "screen.listen: must be IP:port"),
        ({"screen": {"size": "big"}}, "screen.size: must be WIDTHxHEIGHT"),
        ({"kiosk": {"hardware_id": "k", "languages": ["xx_XX"]}}, "kiosk.languages:"),
        ({"printer": "epson"}, "printer: must be a table"),
        ({"audio": {"voices": ["xx_XX=da"]}}, "audio.voices: 'xx_XX' is not one of"),
        ({"audio": {"voices": ["da"]}}, "audio.voices: 'da' must be LOCALE=VOICE"),
        ({"audio": {"voices": ["da_DK=-w /tmp/x"]}}, "audio.voices: '-w /tmp/x' is not an espeak-ng voice"),
        ({"audio": {"device": "hw:0 --stdout"}}, "audio.device:"),
        ({"audio": {"output": "loud"}}, "audio.output: must be one of"),
        ({"audio": {"rate": 5}}, "audio.rate: must be a whole number from 80"),
        ({"extra": {}}, "extra: unknown key"),
    ],
)
def test_mistakes_name_the_key(change: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({**MINIMAL, **change}, base=Path("/"))
    assert message in str(error.value)


def test_zero_debounce_is_off_and_loopback_listen_addresses_are_fine() -> None:
    config = parse_config({**MINIMAL, "scanner": {"debounce_s": 0}, "screen": {"listen": "[::1]:8080"}}, base=Path("/"))
    assert config.scanner.debounce_s == 0 and config.screen.address == ("::1", 8080)


def test_missing_section() -> None:
    with pytest.raises(ConfigError, match=r"\[backend\]: section is required"):
        parse_config({"kiosk": {"hardware_id": "k"}}, base=Path("/"))


def test_http_is_allowed_on_loopback_only() -> None:
    config = parse_config(
        {**MINIMAL, "backend": {**MINIMAL["backend"], "url": "http://127.0.0.1:8080"}}, base=Path("/")
    )
    assert config.backend.url == "http://127.0.0.1:8080"


def test_cli_reports_a_bad_file_and_exits_non_zero(tmp_path: Path) -> None:
    bad = tmp_path / "kiosk.toml"
    bad.write_text(
        '[kiosk]\nhardware_id = "k"\n[backend]\nurl = "https://x.example"\ndrop_point_location_id = "d"\n'
        'token_file = "t"\nread_timeout_s = "soon"\n'
    )
    result = run_kiosk("scan", "10HS0042", "--config", str(bad))
    assert result.returncode == 2
    assert "backend.read_timeout_s: must be a number of seconds" in result.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[kiosk\n")
    result = run_kiosk("scan", "10HS0042", "--config", str(broken))
    assert result.returncode == 2 and "not valid TOML" in result.stderr
    result = run_kiosk("scan", "10HS0042", "--config", str(tmp_path / "absent.toml"))
    assert result.returncode == 2 and "cannot read" in result.stderr


def test_cli_refuses_a_token_file_others_can_read(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("secret\n")
    token.chmod(0o644)
    config = tmp_path / "kiosk.toml"
    config.write_text(
        '[kiosk]\nhardware_id = "k"\n[backend]\nurl = "https://x.example"\ndrop_point_location_id = "d"\n'
        'token_file = "token"\n'
    )
    result = run_kiosk("scan", "10HS0042", "--config", str(config))
    assert result.returncode == 2
    assert "mode 0600" in result.stderr and "secret" not in result.stderr
