# A stand-in for MicroPython's `machine` module, for running the board's firmware in the
# WebAssembly port under node (firmware/tests/board_sim.mjs). It models what the firmware relies on:
# pins with levels and edge interrupts, UARTs with receive buffers, PWM outputs, and a watchdog that
# resets the "board" when it is not fed in time. Inputs arrive from JavaScript through the sim_*
# functions; outputs leave as JSON events through the `simhw` module the runner registers.
import binascii
import json

import simhw


def _emit(**event):
    simhw.emit(json.dumps(event))


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8

    _levels = {}  # pin id -> level the outside world drives
    _irqs = {}  # pin id -> (handler, trigger, pin)

    def __init__(self, id, mode=IN, pull=None, value=None):
        self.id = id
        self.mode = mode
        if id not in Pin._levels:
            Pin._levels[id] = 1 if pull == Pin.PULL_UP else 0
        if value is not None:
            self.value(value)

    def value(self, level=None):
        if level is None:
            return Pin._levels[self.id]
        Pin._levels[self.id] = 1 if level else 0
        _emit(pin=self.id, level=Pin._levels[self.id])

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, hard=False):
        Pin._irqs[self.id] = (handler, trigger, self)


class UART:
    _rx = {}  # uart id -> bytearray waiting to be read
    _failing = {}  # uart id -> error text: reads raise (a broken peripheral)

    def __init__(self, id, baudrate=9600, tx=None, rx=None, timeout=0, **kwargs):
        self.id = id
        UART._rx.setdefault(id, bytearray())

    def any(self):
        return len(UART._rx[self.id])

    def read(self, n=-1):
        if self.id in UART._failing:
            raise RuntimeError(UART._failing[self.id])
        buffer = UART._rx[self.id]
        if not buffer:
            return None
        n = len(buffer) if n is None or n < 0 else n
        data = bytes(buffer[:n])
        UART._rx[self.id] = buffer[n:]
        return data

    def write(self, data):
        _emit(uart=self.id, hex=binascii.hexlify(bytes(data)).decode())
        return len(data)


class PWM:
    def __init__(self, pin, freq=1000, duty_u16=0):
        self.pin = pin.id
        self._freq = freq
        self.duty_u16(duty_u16)

    def freq(self, value=None):
        if value is None:
            return self._freq
        self._freq = value
        _emit(pwm=self.pin, freq=value)

    def duty_u16(self, value=None):
        if value is None:
            return self._duty
        self._duty = value
        _emit(pwm=self.pin, duty=value)


class WDT:
    def __init__(self, id=0, timeout=5000):
        simhw.wdt_start(timeout)

    def feed(self):
        simhw.wdt_feed()


def reset():
    _emit(reset="machine.reset")
    simhw.halt(0)


def unique_id():
    return b"\xe6\x60\x58\x38\x83\x4b\x2a\x29"


def freq():
    return 125000000


# --- driven by the simulator ---------------------------------------------------------------------


def sim_uart_feed(id, hex_data):
    UART._rx.setdefault(id, bytearray()).extend(binascii.unhexlify(hex_data))


def sim_uart_fail(id, text):
    UART._failing[id] = text


def sim_set_pin(id, level):
    old = Pin._levels.get(id)
    Pin._levels[id] = level
    if id in Pin._irqs and old != level:
        handler, trigger, pin = Pin._irqs[id]
        if trigger & (Pin.IRQ_RISING if level else Pin.IRQ_FALLING) and handler is not None:
            handler(pin)
