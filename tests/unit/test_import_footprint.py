"""What a running kiosk imports is what it holds in memory for good (scripts/bench/fleet.py): the
kiosk's own modules, never a simulator, a test tool or another program's command line, and a camera
kiosk neither OpenCV nor numpy (40 MB of a 130 MB kiosk when it did)."""

from __future__ import annotations

import json
import subprocess
import sys

#: Packages installed beside the kiosk (the technician's esptool brings rich and click; the
#: simulators and test tools are in the repository) that ``kiosk run`` must not load.
NOT_IN_A_KIOSK = (
    "rich",
    "click",
    "pygments",
    "kiosk.sim",
    "hypothesis",
    "pytest",
    "kiosk.shop",
    "cv2",
    "numpy",
    "pyzbar",
)


def test_kiosk_run_loads_no_command_line_simulator_or_test_tool() -> None:
    probe = (
        "import json, sys, kiosk.cli, kiosk.runtime, kiosk.devices.scanner.camera_source; "
        "kiosk.devices.scanner.image_decoder.ImageDecoder('frame'); "
        "print(json.dumps(sorted({m.split('.')[0] if m.split('.')[0] != 'kiosk' else '.'.join(m.split('.')[:2])"
        " for m in sys.modules})))"
    )
    loaded = set(
        json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
    )
    assert loaded.isdisjoint(NOT_IN_A_KIOSK), sorted(loaded & set(NOT_IN_A_KIOSK))
    assert {"httpx", "aiohttp", "zxingcpp", "PIL", "kiosk.runtime"} <= loaded  # the probe did import the kiosk
