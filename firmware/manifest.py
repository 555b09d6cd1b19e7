# Manifest for a frozen MicroPython build with the I/O board application inside
# (make BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/firmware/manifest.py in ports/rp2). Boards flashed
# with stock MicroPython get the same packages from scripts/flash-firmware (mpremote mip install).
include("$(PORT_DIR)/boards/manifest.py")

# micropython-lib: logging, a console beside the running application, and the second USB CDC port
# that carries the link to the kiosk (the REPL keeps the first).
require("logging")
require("aiorepl")
require("usb-device-cdc")

# The application. main.py is frozen too: the board starts it at boot.
module("main.py", base_path="board")
module("boardapp.py", base_path="board")
module("boardcfg.py", base_path="board")
module("boardlog.py", base_path="board")
module("patterns.py", base_path="board")
module("scanline.py", base_path="board")
module("slot.py", base_path="board")
module("link.py", base_path="../kiosk/board")
