"""The MicroPython I/O board: scanner module, drop-slot sensor, lights and buzzer."""
