#!/usr/bin/env python3
"""Coverage-guided fuzzing (atheris) of the parsers at the kiosk's edges. Each target feeds what
the fuzzer makes to one parser and lets through only the typed refusal that parser promises; any
other exception is a finding (atheris stops and writes the input to crash-*).

    .venv/bin/pip install atheris==3.0.0      # not a dependency of the kiosk or its tests
    .venv/bin/python scripts/fuzz/parsers.py TARGET [-atheris_runs=N] [-max_total_time=S] [CORPUS_DIR]

Targets: codes, voucher, scan_answer, bundle, board_link, scanner_bytes, config, page_json.
"""

from __future__ import annotations

import json
import sys
import tomllib
from datetime import datetime, timezone
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

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _text(data: bytes) -> str:
    return atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(len(data))


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

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [atheris options]")
    target = TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
