"""The I/O board's protocol side, pure: the link shared with the firmware (``link.py``), the lights
and sounds for each flow state (``signals.py``) and UF2 checks (``uf2.py``). The driver that talks
to a board is ``kiosk.devices.board``; the board's files are gathered by ``kiosk.tools.firmware_files``."""
