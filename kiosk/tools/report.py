"""Step-by-step output and the final verdict, the same for every technician tool."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

__all__ = ["Report", "ToolFailed"]


class ToolFailed(Exception):
    """A step failed; the message says what to do about it."""


class Report:
    def __init__(self, tool: str, steps: int, out: TextIO | None = None) -> None:
        self.tool = tool
        self.steps = steps
        self.out = out or sys.stdout
        self._step = 0
        self._decile = -1

    def step(self, text: str) -> None:
        self._step += 1
        self.say(f"[{self._step}/{self.steps}] {text}")

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def detail(self, text: str) -> None:
        self.say(f"      {text}")

    def progress(self, done: int, total: int, unit: str = "KiB") -> None:
        """A progress bar on one line, redrawn in place on a terminal, every 10 % otherwise."""
        fraction = done / total if total else 1.0
        bar = "#" * int(fraction * 30)
        line = f"      [{bar:<30}] {fraction * 100:5.1f} % ({done // 1024}/{total // 1024} {unit})"
        if self.out.isatty():
            print("\r" + line, end="" if done < total else "\n", file=self.out, flush=True)
        elif int(fraction * 10) != self._decile:
            self._decile = int(fraction * 10)
            print(line, file=self.out, flush=True)
        if done >= total:
            self._decile = -1

    def verdict(self, ok: bool, text: str) -> int:
        self.say(f"{'OK' if ok else 'FAILED'}: {self.tool}: {text}")
        return 0 if ok else 1

    def run(self, work: Callable[[], str]) -> int:
        """Run the tool's steps; the verdict is the text ``work`` returns, or why it stopped."""
        try:
            return self.verdict(True, work())
        except ToolFailed as exc:
            return self.verdict(False, str(exc))
        except KeyboardInterrupt:
            return self.verdict(False, "interrupted; the steps after the last one shown were not done")
