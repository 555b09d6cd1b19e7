# A stand-in for micropython-lib's `usb.device.cdc` (package usb-device-cdc), for the simulator:
# the data port's bytes travel on the link UART of the simulator's pin map, where its harness
# listens, so the kiosk's driver talks to a board whose link is "usb".
import machine


class CDCInterface:
    def __init__(self, **kwargs):
        self._port = machine.UART(0)
        self.init(**kwargs)

    def init(self, baudrate=9600, bits=8, parity="N", stop=1, timeout=1000, txbuf=256, rxbuf=256, flow=0):
        self.timeout = timeout

    def read(self, size):
        return self._port.read(size)

    def write(self, buf):
        return self._port.write(buf)
