"""The supervisor restarts what fails and gives up on what keeps failing; logs carry no storms and
no secrets."""

from __future__ import annotations

import asyncio
import io
import logging
import threading

from kiosk.logs import StormFilter, configure_logging, fingerprint, never_log
from kiosk.supervisor import Supervisor


def test_a_failing_task_is_restarted_and_one_that_keeps_failing_gives_up(caplog) -> None:
    runs = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("boom")
        await asyncio.sleep(10)

    async def hopeless() -> None:
        raise ValueError("always")

    async def scenario() -> tuple[dict, str]:
        supervisor = Supervisor(max_failures=4, first_delay_s=0.01, max_delay_s=0.02)
        supervisor.start("flaky", flaky)
        supervisor.start("hopeless", hopeless)
        reason = await asyncio.wait_for(supervisor.gave_up, 5)
        status = supervisor.status()
        await supervisor.stop()
        return status, reason

    with caplog.at_level(logging.ERROR):
        status, reason = asyncio.run(scenario())
    assert len(runs) == 3 and status["flaky"]["state"] == "running" and status["flaky"]["restarts"] == 2
    assert status["hopeless"]["state"] == "failed" and "ValueError: always" in reason
    assert "hopeless failed" in caplog.text and "giving up" in caplog.text


def test_a_task_that_returns_has_stopped_working_and_is_restarted() -> None:
    runs = []

    async def returns() -> None:
        runs.append(1)

    async def scenario() -> None:
        supervisor = Supervisor(max_failures=3, first_delay_s=0.01)
        supervisor.start("returns", returns)
        await asyncio.wait_for(supervisor.gave_up, 5)

    asyncio.run(scenario())
    assert len(runs) == 3


def test_a_thread_body_is_restarted_until_it_returns_or_gives_up() -> None:
    calls = []
    states = []

    def body() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise OSError("unplugged in a way nobody expected")

    async def scenario() -> bool:
        supervisor = Supervisor(max_failures=3, first_delay_s=0.01)
        stop = threading.Event()
        thread = threading.Thread(
            target=supervisor.keep_thread, args=("reader", body), kwargs={"stop": stop, "on_state": states.append}
        )
        thread.start()
        await asyncio.to_thread(thread.join, 5)
        return supervisor.gave_up.done()

    assert asyncio.run(scenario()) is False and len(calls) == 3 and states == ["restarting", "restarting"]

    def broken() -> None:
        raise KeyError("always")

    async def gives_up() -> str:
        supervisor = Supervisor(max_failures=2, first_delay_s=0.01)
        threading.Thread(
            target=supervisor.keep_thread, args=("broken", broken), kwargs={"stop": threading.Event()}, daemon=True
        ).start()
        return await asyncio.wait_for(supervisor.gave_up, 5)

    assert "broken: KeyError" in asyncio.run(gives_up())


def test_identical_lines_are_held_and_counted() -> None:
    now = [0.0]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(StormFilter(60, clock=lambda: now[0]))
    logger = logging.getLogger("test.storm")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for _ in range(1000):
            logger.warning("printer %s gone", "lp0")
        logger.warning("another line")
        now[0] = 61.0
        logger.warning("printer %s gone", "lp0")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines == ["printer lp0 gone", "another line", "printer lp0 gone (and 999 more like it in the 60 s before)"]


def test_a_registered_secret_never_reaches_a_log_line_not_even_in_a_traceback() -> None:
    never_log("tok-SECRET-1234")
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(logging.DEBUG, stream)
        try:
            raise ValueError("header Authorization: Pat tok-SECRET-1234 refused")
        except ValueError:
            logging.getLogger("test.secret").exception("request with %s failed", "tok-SECRET-1234")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert "tok-SECRET-1234" not in stream.getvalue() and stream.getvalue().count("[redacted]") >= 2
    assert fingerprint("HS-ABC") == fingerprint("HS-ABC") and "HS-ABC" not in fingerprint("HS-ABC")


def test_a_storm_of_different_lines_is_bounded_and_cheap() -> None:
    """Lines that each name their own code or client are all let through, but the kinds kept stay
    bounded: before, past 1,000 kinds in a window every line walked all of them (1.6 ms a line at
    26,000), and memory grew with the storm."""
    now = [0.0]
    storm = StormFilter(60, clock=lambda: now[0], max_kinds=100)

    def line(text: str) -> logging.LogRecord:
        return logging.LogRecord("test.storm", logging.WARNING, __file__, 1, text, None, None)

    sizes = []
    for n in range(5000):
        assert storm.filter(line(f"refused code #{n}"))
        sizes.append(len(storm._seen))
        now[0] += 0.001  # all within one window
    assert max(sizes) <= 100
    assert not storm.filter(line("refused code #4999"))  # the newest kinds are still held
    assert storm.filter(line("refused code #0"))  # the oldest were forgotten, so it passes again


def test_a_line_that_keeps_coming_stays_held_through_a_storm_of_others() -> None:
    now = [0.0]
    storm = StormFilter(60, clock=lambda: now[0], max_kinds=100)

    def passes(text: str) -> bool:
        return storm.filter(logging.LogRecord("test.storm", logging.WARNING, __file__, 1, text, None, None))

    through = 0
    for n in range(20_000):
        if n % 10 == 0:
            through += passes("printer lp0 gone")
        else:
            passes(f"refused code #{n}")
        now[0] += 0.001  # 20 s: one window
    assert through == 1
