# Boot entry of the I/O board. Builds the real hardware from boardcfg's pin map and starts the
# application, unless safe mode is asked for: the safe-mode pin held at power-up, or the one-shot
# flag file written by `safe_mode()` at the console or by Ctrl-C. Safe mode starts nothing (no
# watchdog, no USB changes), so a technician always reaches the plain REPL.
import asyncio
import binascii
import hashlib
import os
import sys
import time

import boardcfg
import machine
from boardapp import BoardApp, Hardware
from boardlog import get_logger

SAFE_FLAG = "/safe_mode"


def safe_mode(reset=True):
    """Ask for safe mode at the next start (and restart now unless reset=False)."""
    with open(SAFE_FLAG, "w") as flag:
        flag.write("1")
    if reset:
        machine.reset()


def _safe_mode_reason(pins):
    if machine.Pin(pins["safe_mode_pin"], machine.Pin.IN, machine.Pin.PULL_UP).value() == 0:
        return "safe-mode pin held low"
    try:
        os.remove(SAFE_FLAG)
        return "safe-mode flag"
    except OSError:
        return None


def _manifest_hash():
    try:
        with open("/version.json", "rb") as manifest:
            return binascii.hexlify(hashlib.sha256(manifest.read()).digest()).decode()
    except OSError:
        return "unknown"


class _Leds:
    def __init__(self, pins):
        self._pwm = [machine.PWM(machine.Pin(pin), freq=1000) for pin in pins]

    def set(self, red, green, blue):
        for pwm, level in zip(self._pwm, (red, green, blue)):
            pwm.duty_u16(level * 257)


class _Buzzer:
    def __init__(self, pin):
        self._pwm = machine.PWM(machine.Pin(pin), freq=2000, duty_u16=0)

    def tone(self, freq):
        if freq:
            self._pwm.freq(freq)
            self._pwm.duty_u16(32768)
        else:
            self._pwm.duty_u16(0)


def _link_port(pins, settings, log):
    if settings["link"] == "usb":
        try:
            import usb.device
            from usb.device.cdc import CDCInterface

            cdc = CDCInterface()
            cdc.init(timeout=0)
            # The REPL keeps the built-in port; the product string is what the kiosk's udev rule
            # knows this board by (the maker's and serial strings stay MicroPython's own).
            usb.device.get().init(cdc, builtin_driver=True, product_str=boardcfg.USB_PRODUCT)
            return cdc, "usb"
        except (ImportError, OSError, ValueError) as exc:
            log.warning("no USB CDC data port (%s); using the UART link", exc)
    uart = machine.UART(
        pins["link_uart"],
        pins["link_baud"],
        tx=machine.Pin(pins["link_tx"]),
        rx=machine.Pin(pins["link_rx"]),
        timeout=0,
    )
    return uart, "uart"


def start():
    log = get_logger("board")
    variant = boardcfg.variant_name(sys.platform)
    pins = boardcfg.VARIANTS[variant]
    settings = dict(boardcfg.SETTINGS)
    for key in settings:
        if key in pins:
            settings[key] = pins[key]
    settings["slot_blocked_level"] = pins["slot_blocked_level"]
    reason = _safe_mode_reason(pins)
    if reason:
        print("SAFE MODE (%s): the application is not running. machine.reset() starts it." % reason)
        return
    port, kind = _link_port(pins, settings, log)
    scanner = machine.UART(
        pins["scanner_uart"],
        pins["scanner_baud"],
        tx=machine.Pin(pins["scanner_tx"]),
        rx=machine.Pin(pins["scanner_rx"]),
        timeout=0,
    )
    slot = machine.Pin(pins["slot_pin"], machine.Pin.IN, machine.Pin.PULL_UP)
    wdt = machine.WDT(timeout=settings["watchdog_ms"])
    hw = Hardware(
        port, scanner, slot, _Leds(pins["led_pins"]), _Buzzer(pins["buzzer_pin"]), wdt, time.ticks_ms, time.ticks_diff
    )
    identity = {"fw": boardcfg.FIRMWARE_VERSION, "manifest": _manifest_hash(), "variant": variant, "link": kind}
    app = BoardApp(hw, settings, identity, log)

    async def run():
        app.start()
        if settings["repl"]:
            try:
                import aiorepl

                asyncio.create_task(aiorepl.task(g={"app": app, "safe_mode": safe_mode, "machine": machine}))
            except ImportError:
                log.warning("aiorepl is not installed: no console beside the application")
        while True:
            await asyncio.sleep(3600)

    if not hasattr(asyncio, "run"):
        asyncio.create_task(run())  # the WebAssembly port: JavaScript's event loop drives asyncio
        return
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        # The watchdog cannot be stopped once started: restart into safe mode instead, so the
        # technician who pressed Ctrl-C gets a REPL that stays.
        print("Ctrl-C: restarting into safe mode for the REPL")
        safe_mode()


start()
