# A stand-in for micropython-lib's `usb.device` (package usb-device), for the simulator: the
# WebAssembly port has no USB. `get().init(...)` takes the same keyword arguments as the real
# one, so a misspelt one fails here as it would on a Pico, and prints the configuration it was
# given, for the tests to read.
import json

_device = None


class _Device:
    def init(
        self,
        *itfs,
        builtin_driver=False,
        manufacturer_str=None,
        product_str=None,
        serial_str=None,
        configuration_str=None,
        id_vendor=None,
        id_product=None,
        bcd_device=None,
        device_class=0,
        device_subclass=0,
        device_protocol=0,
        config_str=None,
        max_power_ma=None,
        remote_wakeup=False,
    ):
        print(
            "usb-device init "
            + json.dumps(
                {
                    "interfaces": len(itfs),
                    "builtin_driver": builtin_driver,
                    "manufacturer_str": manufacturer_str,
                    "product_str": product_str,
                    "serial_str": serial_str,
                }
            )
        )


def get():
    global _device
    if _device is None:
        _device = _Device()
    return _device
