"""The I/O-board link protocol, against the shared test vectors and hypothesis."""

from __future__ import annotations

import json
import zlib

from hypothesis import given, strategies as st

from kiosk.board import link
from tests.conftest import REPO

VECTORS = json.loads((REPO / "firmware" / "test_vectors.json").read_text("utf-8"))


def test_vectors_encode_and_decode() -> None:
    assert VECTORS["version"] == link.VERSION
    for case in VECTORS["crc32"]:
        assert link.crc32(bytes.fromhex(case["data_hex"])) == case["crc"] == 0xCBF43926
    decoder = link.FrameDecoder()
    for case in VECTORS["frames"]:
        frame = link.encode_frame(case["type"], case["seq"], bytes.fromhex(case["body_hex"]))
        assert frame.hex() == case["frame_hex"], case["name"]
        assert b"\x00" not in frame[:-1]
        assert decoder.feed(frame) == [(case["type"], case["seq"], bytes.fromhex(case["body_hex"]))]


@given(st.binary(max_size=600))
def test_crc_is_zlibs_and_cobs_round_trips(data: bytes) -> None:
    assert link.crc32(data) == zlib.crc32(data)
    encoded = link.cobs_encode(data)
    assert 0 not in encoded and link.cobs_decode(encoded) == data


@given(st.binary(max_size=300), st.sampled_from(link.TYPES), st.integers(0, 255), st.binary(max_size=200))
def test_garbage_before_a_frame_is_survived(garbage: bytes, kind: int, seq: int, body: bytes) -> None:
    decoder = link.FrameDecoder()
    decoder.feed(garbage)
    messages = decoder.feed(b"\x00" + link.encode_frame(kind, seq, body))
    assert messages[-1] == (kind, seq, body)


@given(st.binary(min_size=1, max_size=100), st.integers(0, 99))
def test_a_corrupted_frame_is_rejected_not_misread(body: bytes, position: int) -> None:
    frame = bytearray(link.encode_frame(link.SCAN, 1, body))
    index = position % (len(frame) - 1)
    frame[index] ^= 0x5A  # may even become a 0x00: then it is two broken frames
    assert link.FrameDecoder().feed(bytes(frame)) == []


def test_overlong_runs_are_dropped_and_the_next_frame_reads() -> None:
    decoder = link.FrameDecoder()
    assert decoder.feed(b"\x01" * 5000 + b"\x00") == [] and decoder.rejected == 1
    assert decoder.feed(link.encode_frame(link.SLOT, 3, b"\x01")) == [(link.SLOT, 3, b"\x01")]


def test_sender_retries_until_acknowledged_then_gives_up() -> None:
    sender = link.Sender(retry_after=0.2, max_tries=3)
    frame = sender.send(link.SCAN, b"10HS0042", now=0.0)
    assert sender.due(0.1) == ([], [])
    assert sender.due(0.25) == ([frame], [])
    assert sender.due(0.5) == ([frame], [])
    assert sender.due(0.8) == ([], [1])  # three tries spent
    second = sender.send(link.SLOT, b"\x01", now=1.0)
    sender.acknowledged(2)
    assert sender.due(5.0) == ([], []) and sender.pending == 0 and second
    (ack,) = link.FrameDecoder().feed(link.ack_frame(2))
    assert ack == (link.ACK, 0, b"\x02")


def test_the_same_file_runs_under_real_micropython() -> None:
    """The firmware's copy of the protocol is this file; MicroPython (WebAssembly) must agree."""
    import shutil
    import subprocess

    node = shutil.which("node")
    assert node, "node is required (make installs Debian's nodejs)"
    result = subprocess.run(
        [node, "firmware/tests/run_micropython.mjs", "firmware/tests/check_link_vectors.py",
         "kiosk/board/link.py", "firmware/test_vectors.json"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"micropython vectors ok: {len(VECTORS['frames'])}"
