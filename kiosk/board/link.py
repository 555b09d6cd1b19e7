"""The kiosk ↔ I/O-board link protocol. Pure, and written in the subset of Python that MicroPython
runs, because the board's firmware uses this very file (no typing imports, no dataclasses; the type
hints are only read by mypy: MicroPython parses annotations and ignores them).

A frame on the wire is ``COBS(header + body + CRC-32) + 0x00``. COBS leaves no zero byte inside a
frame, so after garbage or a lost byte the reader resynchronises at the next 0x00 by itself. The
header is three bytes: protocol version, message type, sequence number. The CRC-32 (IEEE, as in
zlib) is sent little-endian and covers the session nonce followed by header and body. Every message
but ACK carries a sequence number and is acknowledged by an ACK whose body is that number;
``Sender`` retries unacknowledged messages after a timeout (time comes in as an argument).

The session nonce: the kiosk's HELLO carries a fresh random nonce, the board adopts it and echoes it
in its own HELLO, and every other frame's CRC covers it, so a frame recorded in an earlier session
fails its check in a later one (HELLOs themselves are checked with the empty nonce: they are how a
session starts). This stops replays of old frames, not a forger who reads this session's HELLO: a
CRC is not a signature.
"""

import binascii
import json

VERSION = 2  # 2: the session nonce in every CRC but a HELLO's
MAX_FRAME = 512  # bytes of payload, about: a frame over MAX_FRAME + 8 bytes on the wire (COBS) is dropped whole
NONCE_SIZE = 8  # bytes of the session nonce the kiosk draws for each handshake

HELLO = 0x01  # body: JSON {"kiosk", "nonce"} from the kiosk, {"fw", "manifest", "variant", "link", "nonce"} back
SCAN = 0x02  # body: the code, as the scanner module sent it
SLOT = 0x03  # body: ITEM_PASSED when an item passed the drop slot; anything else is no deposit
LIGHTS = 0x04  # body: pattern name, ASCII
BUZZER = 0x05  # body: pattern name, ASCII
HEARTBEAT = 0x06  # body: uptime in ms, 4 bytes little-endian
ERROR = 0x07  # body: message, UTF-8
ACK = 0x08  # body: one byte, the acknowledged sequence number

TYPES = (HELLO, SCAN, SLOT, LIGHTS, BUZZER, HEARTBEAT, ERROR, ACK)

ITEM_PASSED = b"\x01"  # the one SLOT body that is a deposit (b"\x00" says nothing passed)

_CRC_TABLE: list[int] = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0xEDB88320 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32(data: bytes, value: int = 0) -> int:
    """CRC-32 (IEEE 802.3), the same value as zlib.crc32, continued from ``value`` as zlib's is."""
    crc = value ^ 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _checksum(kind: int, nonce: bytes, payload: bytes) -> bytes:
    """The four CRC bytes of a frame: over the nonce (none for a HELLO), then the payload."""
    value = crc32(payload, crc32(b"" if kind == HELLO else nonce))
    return value.to_bytes(4, "little")


def cobs_encode(data: bytes) -> bytes:
    out = bytearray()
    block = bytearray()
    for byte in data:
        if byte == 0:
            out.append(len(block) + 1)
            out.extend(block)
            block = bytearray()
        else:
            block.append(byte)
            if len(block) == 254:
                out.append(255)
                out.extend(block)
                block = bytearray()
    out.append(len(block) + 1)
    out.extend(block)
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    out = bytearray()
    index = 0
    while index < len(data):
        code = data[index]
        if code == 0 or index + code > len(data):
            raise ValueError("bad COBS block")
        out.extend(data[index + 1 : index + code])
        index += code
        if code < 255 and index < len(data):
            out.append(0)
    return bytes(out)


def encode_frame(kind: int, seq: int, body: bytes = b"", nonce: bytes = b"") -> bytes:
    payload = bytes((VERSION, kind, seq & 0xFF)) + bytes(body)
    return cobs_encode(payload + _checksum(kind, nonce, payload)) + b"\x00"


class FrameDecoder:
    """Bytes in, messages out: ``feed`` returns a list of (type, seq, body) of the frames that are
    whole, of this link version and a known type, and pass their CRC under ``nonce`` (a HELLO under
    the empty nonce). The rest are counted in ``rejected`` and skipped; ``other_version`` keeps the
    version byte of a frame that was sound but of another link version (an old firmware, say)."""

    def __init__(self, nonce: bytes = b"") -> None:
        self.nonce = nonce
        self._buffer = bytearray()
        self._overflow = False
        self.rejected = 0
        self.other_version: int | None = None

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        messages = []
        for byte in data:
            if byte != 0:
                if len(self._buffer) < MAX_FRAME + 8:
                    self._buffer.append(byte)
                else:
                    self._overflow = True
                continue
            frame, overflow = bytes(self._buffer), self._overflow
            self._buffer = bytearray()
            self._overflow = False
            if not frame:
                continue
            message = None if overflow else self._parse(frame)
            if message is None:
                self.rejected += 1
            else:
                messages.append(message)
        return messages

    def _parse(self, frame: bytes) -> tuple[int, int, bytes] | None:
        try:
            payload = cobs_decode(frame)
        except ValueError:
            return None
        if len(payload) < 7:
            return None
        kind, header_and_body, checksum = payload[1], payload[:-4], payload[-4:]
        if payload[0] != VERSION:
            if checksum == crc32(header_and_body).to_bytes(4, "little"):  # sound, as version 1 checked it
                self.other_version = payload[0]
            return None
        if kind not in TYPES or checksum != _checksum(kind, self.nonce, header_and_body):
            return None
        return (kind, payload[2], bytes(payload[3:-4]))


class _Unacked:
    """A reliable frame sent and not yet acknowledged: when it last went out, and how often."""

    def __init__(self, frame: bytes, sent_at: float) -> None:
        self.frame = frame
        self.sent_at = sent_at
        self.tries = 1


class Sender:
    """Numbers outgoing messages and decides retransmissions; ``now`` is given by the caller."""

    def __init__(self, retry_after: float = 0.2, max_tries: int = 5, nonce: bytes = b"") -> None:
        self.retry_after = retry_after
        self.max_tries = max_tries
        self.nonce = nonce
        self.seq = 0
        self._unacked: dict[int, _Unacked] = {}

    def restart(self, nonce: bytes) -> None:
        """A new session: frames go out under ``nonce``; what the old one left unacknowledged is
        dropped (it was for a kiosk, or a board, that has gone)."""
        self.nonce = nonce
        self._unacked = {}

    def send(self, kind: int, body: bytes, now: float, reliable: bool = True) -> bytes:
        """The frame to write now; a reliable one is kept until acknowledged (a heartbeat is not:
        the next one says the same)."""
        self.seq = (self.seq + 1) & 0xFF
        frame = encode_frame(kind, self.seq, body, self.nonce)
        if reliable:
            self._unacked[self.seq] = _Unacked(frame, now)
        return frame

    def acknowledged(self, seq: int) -> None:
        self._unacked.pop(seq, None)

    def due(self, now: float) -> tuple[list[bytes], list[int]]:
        """Frames to send again, and the sequence numbers given up on after ``max_tries``."""
        again: list[bytes] = []
        dropped: list[int] = []
        for seq in list(self._unacked):
            entry = self._unacked[seq]
            if now - entry.sent_at >= self.retry_after:
                if entry.tries >= self.max_tries:
                    dropped.append(seq)
                    del self._unacked[seq]
                else:
                    entry.sent_at, entry.tries = now, entry.tries + 1
                    again.append(entry.frame)
        return again, dropped

    @property
    def pending(self) -> int:
        return len(self._unacked)

    def ack(self, seq: int) -> bytes:
        """The ACK of the other side's message ``seq``, under this session's nonce."""
        return encode_frame(ACK, 0, bytes((seq & 0xFF,)), self.nonce)


class Receiver:
    """Drops repeats: a retransmission whose ACK was lost arrives a second time with the same
    sequence number. The last ``window`` numbers are remembered; ``reset`` when a session (a nonce)
    starts, as the other side may have restarted its numbering. HELLOs are not numbered here: they
    start sessions, and answering one twice is harmless."""

    def __init__(self, window: int = 32) -> None:
        self.window = window
        self._seen: list[int] = []

    def reset(self) -> None:
        self._seen = []

    def is_new(self, seq: int) -> bool:
        if seq in self._seen:
            return False
        self._seen.append(seq)
        if len(self._seen) > self.window:
            self._seen.pop(0)
        return True


def hello_body(fields: dict[str, object], nonce: bytes) -> bytes:
    """A HELLO's body: the JSON object ``fields`` with the session nonce in hex ("" for none yet)."""
    doc = dict(fields)
    doc["nonce"] = binascii.hexlify(nonce).decode()
    return json.dumps(doc).encode()


def read_hello(body: bytes) -> tuple[dict[str, object], bytes | None] | None:
    """A HELLO's (fields, nonce): fields is its JSON object, nonce the NONCE_SIZE bytes it carries or
    None when it has none that is well formed. None for a body that is not a JSON object."""
    try:
        fields = json.loads(body)
    except ValueError:  # bad JSON, and in CPython bad UTF-8 as well
        return None
    if not isinstance(fields, dict):
        return None
    text = fields.get("nonce")
    nonce = None
    if isinstance(text, str) and len(text) == 2 * NONCE_SIZE:
        try:
            nonce = binascii.unhexlify(text)
        except ValueError:
            nonce = None
    return fields, nonce
