"""The I/O-board link protocol, against the shared test vectors and hypothesis."""

from __future__ import annotations

import json
import zlib

from hypothesis import given
from hypothesis import strategies as st

from kiosk.board import link
from tests.conftest import REPO

VECTORS = json.loads((REPO / "firmware" / "test_vectors.json").read_text("utf-8"))


def test_vectors_encode_and_decode() -> None:
    assert VECTORS["version"] == link.VERSION
    for case in VECTORS["crc32"]:
        after = bytes.fromhex(case.get("after_hex", ""))
        assert link.crc32(bytes.fromhex(case["data_hex"]), zlib.crc32(after)) == case["crc"] == 0xCBF43926
    session = bytes.fromhex(VECTORS["session_nonce_hex"])
    for case in VECTORS["frames"]:
        body, nonce = bytes.fromhex(case["body_hex"]), bytes.fromhex(case["nonce_hex"])
        frame = link.encode_frame(case["type"], case["seq"], body, nonce)
        assert frame.hex() == case["frame_hex"], case["name"]
        assert b"\x00" not in frame[:-1]
        assert link.FrameDecoder(nonce).feed(frame) == [(case["type"], case["seq"], body)]
        if case["type"] == link.HELLO:
            assert link.read_hello(body)[1] == session, case["name"]
    for case in VECTORS["rejected"]:
        decoder = link.FrameDecoder(bytes.fromhex(case["nonce_hex"]))
        assert decoder.feed(bytes.fromhex(case["frame_hex"])) == [] and decoder.rejected == 1, case["name"]
        assert decoder.other_version == case.get("other_version"), case["name"]


NONCES = st.binary(min_size=link.NONCE_SIZE, max_size=link.NONCE_SIZE)


@given(
    NONCES,
    NONCES,
    st.sampled_from([kind for kind in link.TYPES if kind != link.HELLO]),
    st.integers(0, 255),
    st.binary(max_size=200),
)
def test_a_frame_of_another_session_is_rejected(
    recorded: bytes, current: bytes, kind: int, seq: int, body: bytes
) -> None:
    decoder = link.FrameDecoder(current)
    frame = link.encode_frame(kind, seq, body, recorded)
    assert decoder.feed(frame) == ([(kind, seq, body)] if recorded == current else [])
    assert decoder.rejected == (recorded != current)


@given(NONCES, st.binary(max_size=200))
def test_a_hello_reads_in_any_session_and_carries_its_nonce(nonce: bytes, noise: bytes) -> None:
    body = link.hello_body({"kiosk": "1.0", "noise": noise.hex()}, nonce)
    in_another_session = link.FrameDecoder(b"\x99" * link.NONCE_SIZE)
    assert in_another_session.feed(link.encode_frame(link.HELLO, 1, body)) == [(link.HELLO, 1, body)]
    fields, echoed = link.read_hello(body)
    assert echoed == nonce and fields["kiosk"] == "1.0"


@given(
    st.one_of(
        st.binary(max_size=120),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
            max_leaves=12,
        ).map(lambda doc: json.dumps(doc).encode()),
    )
)
def test_any_hello_body_reads_as_fields_and_a_nonce_or_none(body: bytes) -> None:
    hello = link.read_hello(body)
    if hello is not None:
        fields, nonce = hello
        assert isinstance(fields, dict)
        assert nonce is None or (len(nonce) == link.NONCE_SIZE and fields["nonce"] == nonce.hex())


def test_a_hello_without_a_well_formed_nonce_has_none() -> None:
    for body in (
        b'{"fw": "1.1.0"}',
        b'{"nonce": ""}',
        b'{"nonce": 12}',
        b'{"nonce": "zz11223344556677"}',
        b'{"nonce": "00112233445566"}',
        '{"nonce": "00112233445566\u00e9\u00e9"}'.encode(),
    ):
        assert link.read_hello(body)[1] is None, body
    for body in (b"[1, 2]", b'"text"', b"\xff\xfe{", b"{", b""):
        assert link.read_hello(body) is None, body


def test_a_sender_restarted_for_a_new_session_forgets_the_old_one() -> None:
    old, new = b"\x01" * link.NONCE_SIZE, b"\x02" * link.NONCE_SIZE
    sender = link.Sender(retry_after=0.2, nonce=old)
    sender.send(link.SCAN, b"10HS0042", now=0.0)
    sender.restart(new)
    assert sender.pending == 0 and sender.due(1.0) == ([], [])
    frame = sender.send(link.SLOT, link.ITEM_PASSED, now=1.0)
    assert link.FrameDecoder(new).feed(frame) == [(link.SLOT, sender.seq, link.ITEM_PASSED)]
    assert link.FrameDecoder(new).feed(sender.ack(7)) == [(link.ACK, 0, b"\x07")]
    assert link.FrameDecoder(old).feed(frame) == []


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
    assert decoder.feed(link.encode_frame(link.SLOT, 3, link.ITEM_PASSED)) == [(link.SLOT, 3, link.ITEM_PASSED)]


def test_sender_retries_until_acknowledged_then_gives_up() -> None:
    sender = link.Sender(retry_after=0.2, max_tries=3)
    frame = sender.send(link.SCAN, b"10HS0042", now=0.0)
    assert sender.due(0.1) == ([], [])
    assert sender.due(0.25) == ([frame], [])
    assert sender.due(0.5) == ([frame], [])
    assert sender.due(0.8) == ([], [1])  # three tries spent
    second = sender.send(link.SLOT, link.ITEM_PASSED, now=1.0)
    sender.acknowledged(2)
    assert sender.due(5.0) == ([], []) and sender.pending == 0 and second
    (ack,) = link.FrameDecoder().feed(sender.ack(2))
    assert ack == (link.ACK, 0, b"\x02")
