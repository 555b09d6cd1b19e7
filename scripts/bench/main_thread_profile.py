#!/usr/bin/env python3
"""Run ``kiosk`` with its main thread profiled by CPU time (cProfile on ``time.thread_time``) and
write the statistics to a file when it exits: for a service on one event loop, that thread is what
a burst of requests queues behind, and wall-clock profiles of it mostly show the waiting.

Run: python scripts/bench/main_thread_profile.py OUT.prof kiosk-arguments...
Read: python -c "import pstats; pstats.Stats('OUT.prof').sort_stats('cumtime').print_stats(60)"
"""

from __future__ import annotations

import cProfile
import runpy
import sys
import time


def main() -> None:
    out, arguments = sys.argv[1], sys.argv[2:]
    sys.argv = ["kiosk", *arguments]
    profile = cProfile.Profile(time.thread_time)
    profile.enable()
    try:
        runpy.run_module("kiosk.cli", run_name="__main__")
    finally:
        profile.disable()
        profile.dump_stats(out)


if __name__ == "__main__":
    main()
