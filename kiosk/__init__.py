"""RE-ZIP drop-point kiosk."""

__version__ = "0.1.0"
