"""Printers: ESC/POS transports and the simulated twin that reads a stream back."""
