from hypothesis import given
from hypothesis import strategies as st

from kiosk.devices.scanner.scan_filter import ScanFilter

CODE = "10HS01JAYSCS07SVDQANFS61TF0XJN"


def test_prefix_suffix_aim_and_whitespace_are_stripped() -> None:
    scan_filter = ScanFilter(prefix="STX", suffix="ETX", debounce_s=0)
    assert scan_filter.accept(f" ]Q1STX{CODE}ETX \r", 0) == CODE
    assert scan_filter.accept(CODE, 1) == CODE  # prefix and suffix are optional on the wire
    assert scan_filter.accept("   ", 2) is None


def test_a_held_code_counts_once_and_a_new_code_at_once() -> None:
    scan_filter = ScanFilter(debounce_s=2.0)
    readings = [(CODE, 0.0), (CODE, 0.5), (CODE, 1.9), (CODE, 3.5), ("20GB0042", 3.6), (CODE, 3.7)]
    accepted = [(text, now) for text, now in readings if scan_filter.accept(text, now)]
    # held for 3.5 s with sightings every < 2 s: still one scan; the other code passes at once
    assert accepted == [(CODE, 0.0), ("20GB0042", 3.6)]
    assert scan_filter.accept(CODE, 6.0) == CODE  # shown again after a pause: a new presentation


def test_too_long_is_dropped() -> None:
    assert ScanFilter(max_chars=64).accept("x" * 65, 0) is None


@given(st.lists(st.tuples(st.text(max_size=40), st.floats(0, 1000)), max_size=300))
def test_memory_stays_bounded_and_nothing_raises(readings) -> None:
    scan_filter = ScanFilter(debounce_s=1.0)
    now = 0.0
    for text, step in readings:
        now += step
        result = scan_filter.accept(text, now)
        assert result is None or result == result.strip()
    assert len(scan_filter._last_seen) <= 65 + len(readings)


def test_two_sources_delivering_the_same_code_at_once_count_it_once() -> None:
    import threading
    import time

    class SlowMemory(dict):
        """Its look-ups take a while, so the filter's read-then-write is wide open to a race."""

        def get(self, key, default=None):  # type: ignore[no-untyped-def]
            found = super().get(key, default)
            time.sleep(0.002)
            return found

    for _ in range(5):
        shared = ScanFilter(debounce_s=3.0, _last_seen=SlowMemory())
        accepted: list[str] = []
        start = threading.Barrier(4)

        def deliver() -> None:
            start.wait()
            for _ in range(5):
                result = shared.accept("10HS0042", 100.0)
                if result is not None:
                    accepted.append(result)

        threads = [threading.Thread(target=deliver) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert accepted == ["10HS0042"]
