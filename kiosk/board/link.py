"""The kiosk ↔ I/O-board link protocol. Pure, and written in the subset of Python that MicroPython
runs, because the board's firmware uses this very file (no typing imports, no dataclasses).

A frame on the wire is ``COBS(header + body + CRC-32) + 0x00``. COBS leaves no zero byte inside a
frame, so after garbage or a lost byte the reader resynchronises at the next 0x00 by itself. The
header is three bytes: protocol version, message type, sequence number. The CRC-32 (IEEE, as in
zlib) covers header and body and is sent little-endian. Every message but ACK carries a sequence
number and is acknowledged by an ACK whose body is that number; ``Sender`` retries unacknowledged
messages after a timeout (time comes in as an argument).
"""

VERSION = 1
MAX_FRAME = 512  # bytes of payload; longer runs without a 0x00 are dropped as garbage

HELLO = 0x01  # body: JSON {"fw": version, "manifest": sha256 of the file manifest}
SCAN = 0x02  # body: the code, UTF-8
SLOT = 0x03  # body: one byte, 1 = an item passed the drop slot
LIGHTS = 0x04  # body: pattern name, ASCII
BUZZER = 0x05  # body: pattern name, ASCII
HEARTBEAT = 0x06  # body: uptime in ms, 4 bytes little-endian
ERROR = 0x07  # body: message, UTF-8
ACK = 0x08  # body: one byte, the acknowledged sequence number

TYPES = (HELLO, SCAN, SLOT, LIGHTS, BUZZER, HEARTBEAT, ERROR, ACK)

_CRC_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0xEDB88320 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32(data):
    """CRC-32 (IEEE 802.3), the same value as zlib.crc32."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def cobs_encode(data):
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


def cobs_decode(data):
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


def encode_frame(kind, seq, body=b""):
    payload = bytes((VERSION, kind, seq & 0xFF)) + bytes(body)
    checksum = crc32(payload)
    payload += bytes((checksum & 0xFF, (checksum >> 8) & 0xFF, (checksum >> 16) & 0xFF, (checksum >> 24) & 0xFF))
    return cobs_encode(payload) + b"\x00"


class FrameDecoder:
    """Bytes in, messages out: ``feed`` returns a list of (type, seq, body); bad frames are
    counted in ``rejected`` and skipped."""

    def __init__(self):
        self._buffer = bytearray()
        self._overflow = False
        self.rejected = 0

    def feed(self, data):
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
            message = None if overflow else _parse(frame)
            if message is None:
                self.rejected += 1
            else:
                messages.append(message)
        return messages


def _parse(frame):
    try:
        payload = cobs_decode(frame)
    except ValueError:
        return None
    if len(payload) < 7 or payload[0] != VERSION or payload[1] not in TYPES:
        return None
    body, checksum = payload[3:-4], payload[-4:]
    expected = crc32(payload[:-4])
    if checksum != bytes((expected & 0xFF, (expected >> 8) & 0xFF, (expected >> 16) & 0xFF, (expected >> 24) & 0xFF)):
        return None
    return (payload[1], payload[2], bytes(body))


class Sender:
    """Numbers outgoing messages and decides retransmissions; ``now`` is given by the caller."""

    def __init__(self, retry_after=0.2, max_tries=5):
        self.retry_after = retry_after
        self.max_tries = max_tries
        self.seq = 0
        self._unacked = {}  # seq -> [frame, sent_at, tries]

    def send(self, kind, body, now, reliable=True):
        """The frame to write now; a reliable one is kept until acknowledged (a heartbeat is not:
        the next one says the same)."""
        self.seq = (self.seq + 1) & 0xFF
        frame = encode_frame(kind, self.seq, body)
        if reliable:
            self._unacked[self.seq] = [frame, now, 1]
        return frame

    def acknowledged(self, seq):
        self._unacked.pop(seq, None)

    def due(self, now):
        """Frames to send again, and the sequence numbers given up on after ``max_tries``."""
        again, dropped = [], []
        for seq in list(self._unacked):
            entry = self._unacked[seq]
            if now - entry[1] >= self.retry_after:
                if entry[2] >= self.max_tries:
                    dropped.append(seq)
                    del self._unacked[seq]
                else:
                    entry[1], entry[2] = now, entry[2] + 1
                    again.append(entry[0])
        return again, dropped

    @property
    def pending(self):
        return len(self._unacked)


class Receiver:
    """Drops repeats: a retransmission whose ACK was lost arrives a second time with the same
    sequence number. The last ``window`` numbers are remembered; a HELLO starts afresh, as the other
    side has restarted its numbering."""

    def __init__(self, window=32):
        self.window = window
        self._seen = []

    def is_new(self, kind, seq):
        if kind == HELLO:
            self._seen = []
        if seq in self._seen:
            return False
        self._seen.append(seq)
        if len(self._seen) > self.window:
            self._seen.pop(0)
        return True


def ack_frame(seq):
    return encode_frame(ACK, 0, bytes((seq & 0xFF,)))
