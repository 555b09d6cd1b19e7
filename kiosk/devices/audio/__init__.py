"""Speech output: the screen's essentials spoken with espeak-ng (``speech``), and ``kiosk say``."""
