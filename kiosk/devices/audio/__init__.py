"""Speech output: the screen's essentials spoken with espeak-ng (``speech``); ``kiosk say`` is kiosk/cli/say.py."""
