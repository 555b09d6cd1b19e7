# Pins and settings of each board variant, in one place. The application never names a pin itself:
# main.py builds the hardware objects from the variant chosen here and passes them in.

FIRMWARE_VERSION = "1.2.0"

# The USB product string of a board running this application (a Pico's default is "Board in FS
# mode"): hardware/udev/99-rezip-kiosk.rules names only a device with this string /dev/kiosk-board.
USB_PRODUCT = "RE-ZIP kiosk board"

VARIANTS = {
    # Raspberry Pi Pico / Pico W (RP2040) and Pico 2 (RP2350): the same header.
    "rp2": {
        "scanner_uart": 1,
        "scanner_tx": 4,
        "scanner_rx": 5,
        "scanner_baud": 9600,
        "link_uart": 0,
        "link_tx": 0,
        "link_rx": 1,
        "link_baud": 115200,
        "slot_pin": 15,
        "slot_blocked_level": 0,
        "led_pins": (16, 17, 18),  # red, green, blue through PWM (common-cathode LED or a driver)
        "buzzer_pin": 20,
        "safe_mode_pin": 22,  # tie to GND at power-up to skip the application
    },
    # ESP32 DevKitC (ESP32-S3 boards: change the pins to suit).
    "esp32": {
        "scanner_uart": 2,
        "scanner_tx": 17,
        "scanner_rx": 16,
        "scanner_baud": 9600,
        "link_uart": 1,
        "link_tx": 10,
        "link_rx": 9,
        "link_baud": 115200,
        "slot_pin": 27,
        "slot_blocked_level": 0,
        "led_pins": (25, 26, 32),
        "buzzer_pin": 33,
        "safe_mode_pin": 0,  # the BOOT button: hold it while resetting
    },
    # The simulator (MicroPython's WebAssembly port, sys.platform "webassembly") with the fake
    # `machine` of firmware/sim: the rp2 pin map, the link on UART 0, and shorter watchdog and
    # silence times so the tests need not wait as long as a kiosk would.
    "webassembly": {
        "scanner_uart": 1,
        "scanner_tx": 4,
        "scanner_rx": 5,
        "scanner_baud": 9600,
        "link_uart": 0,
        "link_tx": 0,
        "link_rx": 1,
        "link_baud": 115200,
        "link": "uart",
        "watchdog_ms": 2000,
        "kiosk_silent_ms": 2000,
        "slot_pin": 15,
        "slot_blocked_level": 0,
        "led_pins": (16, 17, 18),
        "buzzer_pin": 20,
        "safe_mode_pin": 22,
    },
}

# Defaults for every variant; a variant may set any of these keys itself.
SETTINGS = {
    "link": "usb",  # "usb": a second USB CDC port (usb-device-cdc), "uart": link_uart's pins
    "scan_gap_ms": 100,  # a code without terminator ends after this much silence
    "scan_max_len": 256,
    "slot_settle_ms": 15,
    "slot_stuck_ms": 5000,
    "heartbeat_ms": 1000,
    "kiosk_silent_ms": 5000,  # no word from the kiosk this long: red "fault" lights
    "watchdog_ms": 8000,  # RP2040's maximum is 8388
    "repl": True,  # aiorepl on the REPL port beside the application
}


def variant_name(platform):
    """The variant for ``sys.platform`` ("rp2", "esp32", "webassembly")."""
    if platform in VARIANTS:
        return platform
    raise ValueError("no pin map for platform " + platform)
