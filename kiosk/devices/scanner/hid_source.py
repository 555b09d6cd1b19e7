"""USB HID (keyboard-wedge) scanners through python-evdev.

The scanner is chosen by a selector: ``usb:VID:PID``, ``name:REGEX`` (its evdev name), or a path
such as a udev symlink (``/dev/input/by-id/usb-...-event-kbd``). Every event node of that device is
opened and grabbed, so its key presses never reach the screen. Key codes are translated with our
own layout table (``KeyDecoder``). The device is looked for again every ``poll_s`` while it is
missing, so it works again after an unplug.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kiosk.devices.scanner.assembler import LineAssembler
from kiosk.devices.scanner.keymap import KeyDecoder
from kiosk.devices.scanner.scan_filter import ScanFilter
from kiosk.devices.scanner.selector import HidSelector
from kiosk.supervisor import Supervisor

__all__ = ["HidScanSource", "KeyEvent", "lines_from_key_events"]

log = logging.getLogger(__name__)

EV_KEY = 1


@dataclass(frozen=True)
class KeyEvent:
    """The part of an evdev event we use (``evdev.InputEvent`` has the same attributes)."""

    type: int
    code: int
    value: int


def _with_siblings(chosen: list[Any], devices: list[Any]) -> list[Any]:
    """Add the other event nodes of the same physical device (same USB path in ``phys``): a
    scanner often has a keyboard node and a consumer-control node, and either may carry keys."""
    ports = {d.phys.rsplit("/", 1)[0] for d in chosen if d.phys}
    return [d for d in devices if d in chosen or (d.phys and d.phys.rsplit("/", 1)[0] in ports)]


def lines_from_key_events(events: Iterable[KeyEvent], layout: str = "us") -> list[str]:
    """Recorded key events → the lines they type (for tests and diagnostics)."""
    decoder = KeyDecoder(layout)
    assembler = LineAssembler("any", idle_flush_s=None)
    lines: list[str] = []
    for event in events:
        if event.type == EV_KEY:
            lines += assembler.feed(decoder.feed(event.code, event.value).encode("utf-8"), 0.0)
    return lines


class HidScanSource:
    def __init__(
        self, selector: str, *, layout: str = "us", scan_filter: ScanFilter | None = None, poll_s: float = 1.0
    ) -> None:
        self.selector = HidSelector.parse(selector)
        self.layout = layout
        self.scan_filter = scan_filter or ScanFilter()
        self.poll_s = poll_s
        self.state = "closed"
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return f"hid:{self.selector.kind}:{self.selector.value}"

    def start(
        self, loop: asyncio.AbstractEventLoop, sink: Callable[[str], None], supervisor: Supervisor | None = None
    ) -> None:
        self._task = (supervisor or Supervisor()).start(self.name, lambda: self._run(sink))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def status_figures(self) -> dict[str, Any] | None:
        return None

    async def _run(self, sink: Callable[[str], None]) -> None:
        import evdev  # only a kiosk with a HID scanner needs the library loaded

        while True:
            devices = [evdev.InputDevice(path) for path in evdev.list_devices()]
            chosen = _with_siblings(
                [d for d in devices if self.selector.matches(str(d.path), str(d.name), d.info.vendor, d.info.product)],
                devices,
            )
            for device in devices:
                if device not in chosen:
                    device.close()
            if not chosen:
                if self.state != "missing":
                    log.warning("HID scanner %s not found; looking again every %.0f s", self.name, self.poll_s)
                self.state = "missing"
                await asyncio.sleep(self.poll_s)
                continue
            try:
                for device in chosen:
                    device.grab()  # its keys must never type into the kiosk page
                self.state = "open"
                log.info("HID scanner %s open: %s", self.name, ", ".join(d.path for d in chosen))
                await self._read(chosen, sink)
            except OSError as exc:
                log.warning("HID scanner %s lost (%s)", self.name, exc)
                self.state = "missing"
            finally:
                for device in chosen:
                    try:
                        device.ungrab()
                    except OSError:
                        pass
                    device.close()

    async def _read(self, devices: list[Any], sink: Callable[[str], None]) -> None:
        decoder = KeyDecoder(self.layout)
        assembler = LineAssembler("any", idle_flush_s=0.1)
        queue: asyncio.Queue[KeyEvent | BaseException] = asyncio.Queue()

        async def pump(events: AsyncIterator[Any]) -> None:
            try:
                async for event in events:
                    queue.put_nowait(event)
            except OSError as exc:
                queue.put_nowait(exc)

        pumps = [asyncio.get_running_loop().create_task(pump(d.async_read_loop())) for d in devices]
        try:
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), 0.05)
                except TimeoutError:
                    self._deliver(assembler.poll(time.monotonic()), sink)
                    continue
                if isinstance(event, BaseException):
                    raise event
                if event.type == EV_KEY:
                    typed = decoder.feed(event.code, event.value).encode("utf-8")
                    self._deliver(assembler.feed(typed, time.monotonic()), sink)
        finally:
            for task in pumps:
                task.cancel()

    def _deliver(self, lines: list[str], sink: Callable[[str], None]) -> None:
        now = time.monotonic()
        for line in lines:
            accepted = self.scan_filter.accept(line, now)
            if accepted is not None:
                sink(accepted)
