"""The fleet's small parts: the STATUS= line, the error lines a report carries, and the stand-in's
reading of untrusted reports."""

from __future__ import annotations

import json
import logging

from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.fleet.snapshot import KioskSnapshot, RecentErrors, status_line
from kiosk.logs import never_log
from kiosk.sim.fleet_view import ReportError, clean_report, problems


def snapshot(**changes: object) -> KioskSnapshot:
    fields: dict[str, object] = dict(
        hardware_id="k1",
        version="0.1.0",
        commit="abc",
        uptime_s=5.0,
        flow_state="idle",
        online=True,
        backend_last_heard_s=1.0,
        clock_offset_s=None,
        printer_state="ready",
        paper_near_end=False,
        board_state=None,
        scanners={},
        offline_codes={"a": 30, "b": 7},
        journal_pending=0,
        oldest_pending_age_s=None,
        last_errors=[],
    )
    fields.update(changes)
    return KioskSnapshot(**fields)  # type: ignore[arg-type]


def test_status_line() -> None:
    assert status_line(snapshot()) == "idle · printer ready · 37 offline codes · online"
    line = status_line(
        snapshot(
            flow_state="showing_voucher",
            printer_state="paper_out",
            board_state="missing",
            journal_pending=3,
            online=False,
        )
    )
    assert line == "showing voucher · printer paper out · board missing · 37 offline codes · 3 to forward · offline"
    assert status_line(snapshot(printer_state=None, paper_near_end=None)) == "idle · 37 offline codes · online"
    assert "paper low" in status_line(snapshot(paper_near_end=True))


def test_error_lines_are_scrubbed_and_carry_no_traceback() -> None:
    never_log("tok-9f8e7d6c5b4a")
    errors = RecentErrors(kept=2)
    logger = logging.getLogger("kiosk.test.errors")
    logger.addHandler(errors)
    try:
        try:
            raise OSError("disk\nfull")
        except OSError:
            logger.exception("write failed with tok-9f8e7d6c5b4a\x1b[2J")
        logger.error("second %s", "line")
        logger.error("third %s", "line")
        logger.warning("not an error")
    finally:
        logger.removeHandler(errors)
    lines = list(errors.lines)
    assert len(lines) == 2 and lines[0].endswith("kiosk.test.errors: second line")
    errors.lines.clear()
    logger.addHandler(errors)
    try:
        logger.error("write failed with tok-9f8e7d6c5b4a\x1b[2J", exc_info=OSError("x"))
    finally:
        logger.removeHandler(errors)
    (line,) = errors.lines
    assert "tok-9f8e7d6c5b4a" not in line and "[redacted]" in line and "\x1b" not in line
    assert "Traceback" not in line and "\n" not in line


values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)
keys = st.sampled_from(
    [
        "hardware_id",
        "printer_state",
        "offline_codes_left",
        "checks",
        "scanners",
        "last_errors",
        "online",
        "version",
        "journal_pending",
        "oldest_pending_age_s",
        "paper_near_end",
        "x",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(values, st.dictionaries(keys, values, max_size=8), st.fixed_dictionaries({"hardware_id": values})))
def test_any_report_is_read_or_refused_and_always_renders(raw: object) -> None:
    try:
        report = clean_report(raw)
    except ReportError:
        return
    json.dumps(report, ensure_ascii=False, allow_nan=False).encode("utf-8")  # the view can always be served
    for line in problems(report):
        assert isinstance(line, str) and all(ch.isprintable() for ch in line)


def test_the_release_record_reaches_the_report_checked(tmp_path) -> None:
    from kiosk.fleet.wiring import release_record

    path = tmp_path / "release-health.json"
    assert release_record(path) is None  # no health gate has run: nothing to say
    path.write_text(
        '{"running": "1.2.0", "previous": "1.1.0", "checked": true, "token": "s3cret",'
        ' "rollback": {"failed_release": "1.3.0", "reason": "' + "x" * 500 + '", "at": 7},'
        ' "last_rollback": "not an object"}'
    )
    record = release_record(path)
    assert record == {
        "running": "1.2.0",
        "previous": "1.1.0",
        "rollback": {"failed_release": "1.3.0", "reason": "x" * 200},
    }
    path.write_text("[1, 2]")
    assert release_record(path) is None
    path.write_bytes(b"\xff{")
    assert release_record(path) is None
