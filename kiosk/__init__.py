"""RE-ZIP drop-point kiosk."""

import sys

__version__ = "0.1.0"

# httpx imports its command line (httpx._main) whenever rich, click and pygments are installed, and
# esptool (the technician's board flasher, kiosk tools flash) installs them: ~6 MB of a kiosk's
# resident memory for a command it never runs. A None entry makes that import fail, and httpx then
# does without its command line (scripts/bench/fleet.py measures the kiosk's memory).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
