# The I/O board's application: asyncio tasks for the scanner UART, the drop-slot sensor, the
# lights and buzzer, the link to the kiosk, the heartbeat and the watchdog. Every piece of hardware
# is passed in (see main.py for the real ones, firmware/sim/machine.py for the simulator's), so this
# runs on a Pico, an ESP32, and under the WebAssembly MicroPython in the tests alike.
import asyncio

import link
import patterns
from scanline import ScanAssembler
from slot import BLOCKED, CLEAR, STUCK, SlotDebouncer


class Hardware:
    """What the application drives. ``link`` and ``scanner`` are streams read without blocking
    (``read`` returns None or b"" when nothing waits); ``leds.set(r, g, b)``; ``buzzer.tone(hz)``
    (0 = quiet); ``wdt`` has ``feed()`` or is None; ``ticks_ms``/``ticks_diff`` as in ``time``."""

    def __init__(self, link, scanner, slot_pin, leds, buzzer, wdt, ticks_ms, ticks_diff):
        self.link = link
        self.scanner = scanner
        self.slot_pin = slot_pin
        self.leds = leds
        self.buzzer = buzzer
        self.wdt = wdt
        self.ticks_ms = ticks_ms
        self.ticks_diff = ticks_diff


class BoardApp:
    TASKS = ("scanner", "slot", "link", "lights")

    def __init__(self, hw, settings, identity, log):
        self.hw = hw
        self.settings = settings
        self.identity = identity  # {"fw": version, "manifest": sha256, "variant": name}
        self.log = log
        self.nonce = b""  # the session nonce from the kiosk's hello; none yet
        self.sender = link.Sender(retry_after=200, max_tries=5)
        self.receiver = link.Receiver()
        self.decoder = link.FrameDecoder()
        self.pattern = "boot"
        self.pattern_since = hw.ticks_ms()
        # The kiosk names the tune of each pattern it sets; the board plays those of its own two.
        self.tune = "boot"
        self.tune_since = self.pattern_since
        self.kiosk_seen = None  # ticks of the kiosk's last message, None before the first
        self.hello_acked = False
        self.hello_seq = None
        self.alive = {}
        # For the technician at the console (aiorepl): `app.stats`.
        self.stats = {"scans": 0, "deposits": 0, "rejected_frames": 0, "dropped": 0}
        self._edges = []  # (level, ticks) recorded by the slot pin's IRQ

    # --- starting -------------------------------------------------------------------------------

    def start(self):
        """Create the tasks (the WebAssembly port has no asyncio.run, so nothing here blocks)."""
        if self.hw.slot_pin is not None and hasattr(self.hw.slot_pin, "irq"):
            pin = self.hw.slot_pin
            pin.irq(handler=self._slot_edge, trigger=pin.IRQ_FALLING | pin.IRQ_RISING)
        tasks = [
            asyncio.create_task(self._scanner_task()),
            asyncio.create_task(self._slot_task()),
            asyncio.create_task(self._link_task()),
            asyncio.create_task(self._lights_task()),
            asyncio.create_task(self._heartbeat_task()),
        ]
        if self.hw.wdt is not None:
            tasks.append(asyncio.create_task(self._watchdog_task()))
        self._say_hello()
        self.log.info("board %s firmware %s started", self.identity.get("variant"), self.identity.get("fw"))
        return tasks

    # --- sending --------------------------------------------------------------------------------

    def _send(self, kind, body, reliable=True):
        if not self.nonce and kind != link.HELLO:
            # No kiosk session yet: the kiosk would reject the frame, so only hellos go out.
            self.stats["dropped"] += 1
            return None
        frame = self.sender.send(kind, body, self.hw.ticks_ms(), reliable)
        self.hw.link.write(frame)
        return self.sender.seq

    def _say_hello(self):
        self.hello_acked = False
        self.hello_seq = self._send(link.HELLO, link.hello_body(self.identity, self.nonce))

    def error(self, text):
        self.log.warning("%s", text)
        self._send(link.ERROR, text.encode())

    # --- tasks ----------------------------------------------------------------------------------

    async def _scanner_task(self):
        assembler = ScanAssembler(self.settings["scan_gap_ms"], self.settings["scan_max_len"])
        told = 0
        while True:
            self.alive["scanner"] = self.hw.ticks_ms()
            uart = self.hw.scanner
            now = self.hw.ticks_ms()
            if uart.any():
                codes = assembler.feed(uart.read(uart.any()) or b"", now)
            else:
                codes = assembler.poll(now, self.hw.ticks_diff)
            for code in codes:
                self.stats["scans"] += 1
                self._send(link.SCAN, code)
            if assembler.overlong != told:
                told = assembler.overlong
                self.error("scanner sent a line longer than %d bytes; dropped" % assembler.max_len)
            await asyncio.sleep(0.005)

    def _slot_edge(self, pin):
        # Runs as a (soft) interrupt: only note the edge; the task does the thinking.
        if len(self._edges) < 32:
            self._edges.append((pin.value(), self.hw.ticks_ms()))

    async def _slot_task(self):
        debouncer = SlotDebouncer(
            self.settings["slot_settle_ms"], self.settings["slot_stuck_ms"], self.settings.get("slot_blocked_level", 0)
        )
        pin = self.hw.slot_pin
        while True:
            self.alive["slot"] = self.hw.ticks_ms()
            if pin is not None:
                edges, self._edges = self._edges, []
                samples = edges + [(pin.value(), self.hw.ticks_ms())]
                for level, at in samples:
                    for event in debouncer.update(level, at, self.hw.ticks_diff):
                        self._slot_event(event)
            await asyncio.sleep(0.005)

    def _slot_event(self, event):
        if event == CLEAR:
            self.stats["deposits"] += 1
            self._send(link.SLOT, link.ITEM_PASSED)
        elif event == STUCK:
            self.error("drop-slot sensor blocked for over %d ms: jammed or dirty" % self.settings["slot_stuck_ms"])
        elif event == BLOCKED:
            self.log.debug("slot beam blocked")

    async def _link_task(self):
        while True:
            self.alive["link"] = self.hw.ticks_ms()
            data = self.hw.link.read(256)
            if data:
                for kind, seq, body in self.decoder.feed(data):
                    self._received(kind, seq, body)
                self.stats["rejected_frames"] = self.decoder.rejected
            again, dropped = self.sender.due(self.hw.ticks_ms())
            for frame in again:
                self.hw.link.write(frame)
            if dropped:
                self.stats["dropped"] += len(dropped)
                if self.hello_seq in dropped:
                    self.hello_seq = None
            await asyncio.sleep(0.005)

    def _received(self, kind, seq, body):
        if kind == link.HELLO:
            self._kiosk_hello(seq, body)
            return
        self.kiosk_seen = self.hw.ticks_ms()  # a frame of this session: the kiosk is there
        if kind == link.ACK:
            if body:
                self.sender.acknowledged(body[0])
                if body[0] == self.hello_seq:
                    self.hello_acked = True
            return
        self.hw.link.write(self.sender.ack(seq))
        if not self.receiver.is_new(seq):
            return
        if kind == link.LIGHTS:
            name = _pattern_name(body)
            if name in patterns.LIGHTS:
                if name != self.pattern:
                    self.pattern, self.pattern_since = name, self.hw.ticks_ms()
            else:
                self.error("unknown light pattern %s" % name)
        elif kind == link.BUZZER:
            name = _pattern_name(body)
            if name in patterns.BUZZER:
                self.tune, self.tune_since = name, self.hw.ticks_ms()
            else:
                self.error("unknown buzzer pattern %s" % name)
        elif kind != link.HEARTBEAT:
            self.error("unexpected message type %d from the kiosk" % kind)

    def _kiosk_hello(self, seq, body):
        # The kiosk (re)started a session: adopt its nonce, so frames of any earlier session stop
        # counting, and introduce ourselves again echoing it. Its hello again (a retry whose ACK was
        # lost) keeps the session, and what waits for an ACK in it.
        hello = link.read_hello(body)
        if hello is None or hello[1] is None:
            self.log.warning("unreadable hello from the kiosk")
            return
        nonce = hello[1]
        if nonce != self.nonce:
            self.nonce = nonce
            self.decoder.nonce = nonce
            self.sender.restart(nonce)
            self.receiver.reset()
        self.kiosk_seen = self.hw.ticks_ms()
        self.hw.link.write(self.sender.ack(seq))
        self._say_hello()

    async def _lights_task(self):
        shown, sounding = None, None
        while True:
            now = self.hw.ticks_ms()
            self.alive["lights"] = now
            silent = (
                self.kiosk_seen is None or self.hw.ticks_diff(now, self.kiosk_seen) > self.settings["kiosk_silent_ms"]
            )
            if silent and self.pattern not in ("boot", "fault"):
                self.pattern, self.pattern_since = "fault", now
                self.tune, self.tune_since = "fault", now
                self.log.warning("no word from the kiosk for %d ms", self.settings["kiosk_silent_ms"])
            rgb = patterns.light_at(self.pattern, self.hw.ticks_diff(now, self.pattern_since))
            if rgb != shown:
                self.hw.leds.set(*rgb)
                shown = rgb
            freq = 0
            if self.tune is not None:
                freq = patterns.tone_at(self.tune, self.hw.ticks_diff(now, self.tune_since))
                if freq is None:
                    self.tune, freq = None, 0
            if freq != sounding:
                self.hw.buzzer.tone(freq)
                sounding = freq
            await asyncio.sleep(0.02)

    async def _heartbeat_task(self):
        started = self.hw.ticks_ms()
        while True:
            await asyncio.sleep(self.settings["heartbeat_ms"] / 1000)
            uptime = self.hw.ticks_diff(self.hw.ticks_ms(), started) & 0xFFFFFFFF
            self._send(link.HEARTBEAT, uptime.to_bytes(4, "little"), reliable=False)
            if not self.hello_acked and self.hello_seq is None:
                self._say_hello()  # nobody answered yet: keep introducing ourselves

    async def _watchdog_task(self):
        # Feed the hardware watchdog only while every task keeps checking in: a task that died or
        # hangs stops the feeding, and the board resets.
        limit = self.settings["watchdog_ms"] // 2
        while True:
            now = self.hw.ticks_ms()
            stale = [
                name for name in self.TASKS if self.hw.ticks_diff(now, self.alive.get(name, now - limit - 1)) > limit
            ]
            if stale:
                self.log.error("tasks not running: %s; the watchdog will reset the board", ",".join(stale))
            else:
                self.hw.wdt.feed()
            await asyncio.sleep(0.5)


def _pattern_name(body):
    # A pattern's name, or None for bytes that are no text (bytes.decode raises on them here).
    try:
        return body.decode()
    except UnicodeError:
        return None
