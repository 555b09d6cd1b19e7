#!/usr/bin/env python3
"""Coverage-guided fuzzing (atheris) of the parsers at the kiosk's edges. Each target feeds what
the fuzzer makes to one parser and lets through only the typed refusal that parser promises; any
other exception is a finding (atheris stops and writes the input to crash-*).

    .venv/bin/pip install atheris==3.0.0      # not a dependency of the kiosk or its tests
    .venv/bin/python scripts/fuzz/parsers.py TARGET [-atheris_runs=N] [-max_total_time=S] [CORPUS_DIR]

Targets: codes, voucher, scan_answer, bundle, board_link, scanner_bytes, config, page_json. Without a
corpus folder, one is made in a temporary folder from the seeds below (valid inputs the mutations
start from, so the JSON targets reach past the JSON parser).
"""

from __future__ import annotations

import json
import sys
import tempfile
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from kiosk.board import link
    from kiosk.config import ConfigError, parse_config
    from kiosk.core.bundle import BundleError, parse_bundle
    from kiosk.core.codes import normalise
    from kiosk.core.voucher import VoucherError, parse_voucher
    from kiosk.devices.scanner.assembler import LineAssembler
    from kiosk.devices.screen.page_requests import Refused, frame_number, read_json_object
    from kiosk.issuance.rezip_client import RezipClient

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _text(data: bytes) -> str:
    """The bytes as a reader would decode them (UTF-8, else Latin-1), so seeds stay what they are."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _json(data: bytes) -> object:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def codes(data: bytes) -> None:
    normalise(_text(data), url_hosts=("re-zip.com", "*.re-zip.com"))


def voucher(data: bytes) -> None:
    try:
        parsed = parse_voucher(_json(data), now=NOW)
    except VoucherError:
        return
    json.dumps(parsed.to_json(), ensure_ascii=False).encode("utf-8")  # what the journal writes


_CLIENT: RezipClient | None = None


def scan_answer(data: bytes) -> None:
    global _CLIENT
    if _CLIENT is None:
        _CLIENT = RezipClient("http://127.0.0.1:9", "token", drop_point_location_id="dp", hardware_id="k")
    doc = _json(data)
    try:
        _CLIENT._accepted(doc)  # the body rules of a 2xx answer
    except VoucherError:
        pass


def bundle(data: bytes) -> None:
    try:
        parse_bundle(_json(data), now=NOW)
    except BundleError:
        pass


def board_link(data: bytes) -> None:
    decoder = link.FrameDecoder()
    for message in decoder.feed(data):
        kind, seq, body = message
        assert kind in link.TYPES and 0 <= seq <= 255 and isinstance(body, bytes)


def scanner_bytes(data: bytes) -> None:
    assembler = LineAssembler("any")
    for line in assembler.feed(data, 0.0) + assembler.poll(1.0):
        normalise(line)


def config(data: bytes) -> None:
    try:
        doc = tomllib.loads(_text(data))
    except (tomllib.TOMLDecodeError, RecursionError):
        return
    try:
        parse_config(doc, base=Path("/tmp"))
    except ConfigError:
        pass


def page_json(data: bytes) -> None:
    try:
        frame_number(read_json_object(data), newest=10)
    except Refused:
        pass


TARGETS = {f.__name__: f for f in (codes, voucher, scan_answer, bundle, board_link, scanner_bytes, config, page_json)}

_VOUCHER = {
    "code": "SAVE50-A1B2C3",
    "link": "https://shop.example/r?c=SAVE50",
    "type": "amount",
    "value": 5000,
    "unit": "DKK",
    "conditions": "Min. 200 DKK",
    "expires_at": "2027-01-01T00:00:00Z",
    "shop": {"name": "Shop", "logo_url": "https://shop.example/logo.png"},
}
SEEDS = {
    "codes": [b"10HS01JAYSCS07SVDQANFS61TF0XJN", b"https://re-zip.com/p/10HS0042", b"]Q110HS0042\r\n"],
    "voucher": [json.dumps(_VOUCHER).encode()],
    "scan_answer": [
        json.dumps(
            {
                "id": "x",
                "type": "Voucher",
                "data": {
                    "code": "HS-1",
                    "conditions": "",
                    "expires_at": None,
                    "link": None,
                    "value_data": {"type": "percentage", "value": 20, "unit": "%"},
                    "shop": _VOUCHER["shop"],
                },
            }
        ).encode()
    ],
    "bundle": [
        json.dumps(
            {
                "bundle_id": "B1",
                "drop_point_id": "dp",
                "country": "DK",
                "issued_at": "2026-12-01T00:00:00Z",
                "expires_at": "2026-12-08T00:00:00Z",
                "shops": {"s1": {"name": "Shop"}},
                "prefixes": {"10HS": "s1"},
                "pools": [{"id": "p1", "shop_id": "s1", "countries": ["DK"], "visibility": "public"}],
                "codes": [{**_VOUCHER, "pool_id": "p1"}],
            }
        ).encode()
    ],
    "board_link": [link.encode_frame(link.SCAN, 1, b"10HS0042") + link.encode_frame(link.SLOT, 2, b"\x01")],
    "scanner_bytes": [b"10HS0042\r20GB0042\n"],
    "config": [
        b'[kiosk]\nhardware_id = "k"\n[backend]\nurl = "https://127.0.0.1"\n'
        b'drop_point_location_id = "d"\ntoken_file = "t"\n[offline]\nmax_value = { DKK = 5 }\n'
    ],
    "page_json": [b'{"seq": 3}'],
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [atheris options]")
    name = sys.argv.pop(1)
    if not any(not argument.startswith("-") for argument in sys.argv[1:]):
        corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
        for index, seed in enumerate(SEEDS[name]):
            (corpus / f"seed-{index}").write_bytes(seed)
        sys.argv.append(str(corpus))
    atheris.Setup(sys.argv, TARGETS[name])
    atheris.Fuzz()
