# The board's pure logic, checked the same way under CPython and under MicroPython (the tests run
# this file with both). Plain asserts: MicroPython has no pytest.
import sys

import link
import patterns
from scanline import ScanAssembler
from slot import BLOCKED, CLEAR, STUCK, SlotDebouncer

checks = 0

# Scanner UART: terminators, a code split over reads, a silence-ended code, an overlong line.
assembler = ScanAssembler(gap_ms=100, max_len=16)
assert assembler.feed(b"10HS00", 0) == []
assert assembler.feed(b"42\r\n", 5) == [b"10HS0042"]
assert assembler.feed(b"A\tB\r", 6) == [b"A", b"B"]
assert assembler.feed(b"NOEND", 10) == [] and assembler.poll(50) == [] and assembler.poll(110) == [b"NOEND"]
assert assembler.feed(b"X" * 40 + b"\r", 200) == [] and assembler.overlong == 1
assert assembler.feed(b"OK\r", 210) == [b"OK"]
checks += 1

# Slot sensor: bounce is ignored, one passage is one deposit, a jam is told once.
debouncer = SlotDebouncer(settle_ms=15, stuck_ms=1000, blocked_level=0)
events = []
for level, at in ((0, 0), (1, 3), (0, 5), (0, 25), (1, 60), (0, 62), (1, 64), (1, 90)):
    events += debouncer.update(level, at)
assert events == [BLOCKED, CLEAR], events
events = []
for at in range(100, 2500, 10):
    events += debouncer.update(0, at)
assert events == [BLOCKED, STUCK], events
assert debouncer.update(1, 2600) == [] and debouncer.update(1, 2620) == [CLEAR]
checks += 1

# Patterns: steps in order, repeating; tunes end.
assert patterns.light_at("awaiting_deposit", 0) == (0, 0, 255)
assert patterns.light_at("awaiting_deposit", 450) == (0, 0, 40)
assert patterns.light_at("awaiting_deposit", 650) == (0, 0, 255)
assert patterns.tone_at("voucher", 10) == 1800 and patterns.tone_at("voucher", 100) == 0
assert patterns.tone_at("voucher", 5000) is None
for name in patterns.LIGHTS:
    assert len(patterns.light_at(name, 12345)) == 3
    assert patterns.tone_at(name, 0) > 0  # every light pattern has its own tune
checks += 1

# Receiver: a retransmission is dropped, a new session starts afresh.
receiver = link.Receiver(window=4)
assert receiver.is_new(1) and not receiver.is_new(1)
receiver.reset()
assert receiver.is_new(1)
for seq in (2, 3, 4, 5, 6):
    assert receiver.is_new(seq)
assert receiver.is_new(1)  # fell out of the window
checks += 1

print(sys.implementation.name, "board logic ok:", checks)
