"""The I/O board: the link protocol shared by the kiosk and the board's MicroPython firmware."""
