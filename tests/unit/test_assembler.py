from hypothesis import given
from hypothesis import strategies as st

from kiosk.devices.scanner.assembler import LineAssembler


def test_each_terminator() -> None:
    assert LineAssembler("cr").feed(b"AB\rCD\r", 0) == ["AB", "CD"]
    assert LineAssembler("lf").feed(b"AB\nCD\r\n", 0) == ["AB", "CD\r"]
    assert LineAssembler("crlf").feed(b"AB\r\nCD\r\n", 0) == ["AB", "CD"]
    assert LineAssembler("tab").feed(b"AB\tCD", 0) == ["AB"]
    assert LineAssembler("any").feed(b"A\rB\nC\tD\r\n", 0) == ["A", "B", "C", "D"]


def test_no_terminator_flushes_after_silence() -> None:
    assembler = LineAssembler("none", idle_flush_s=0.1)
    assert assembler.feed(b"10HS", 0.0) == []
    assert assembler.feed(b"0042", 0.05) == []
    assert assembler.poll(0.1) == []
    assert assembler.poll(0.16) == ["10HS0042"]
    assert assembler.poll(1.0) == []


def test_an_unterminated_partial_line_is_flushed_too() -> None:
    assembler = LineAssembler("cr", idle_flush_s=0.1)
    assembler.feed(b"PART", 0)
    assert assembler.poll(0.2) == ["PART"]


def test_overlong_lines_are_dropped_whole_and_memory_stays_bounded() -> None:
    assembler = LineAssembler("cr", max_bytes=16)
    assert assembler.feed(b"X" * 65536, 0) == []
    assert len(assembler._buffer) <= 16
    assert assembler.feed(b"TAIL\rOK\r", 0) == ["OK"]


def test_non_utf8_falls_back_to_latin1() -> None:
    assert LineAssembler("cr").feed(b"caf\xe9\r", 0) == ["café"]
    assert LineAssembler("cr").feed("Grøn\r".encode(), 0) == ["Grøn"]


@given(
    st.lists(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40), max_size=8),
    st.data(),
)
def test_chunking_never_changes_the_lines(lines: list[str], data) -> None:
    stream = b"".join(line.encode() + b"\r" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    assembler = LineAssembler("cr", idle_flush_s=None)
    out: list[str] = []
    previous = 0
    for cut in [*cuts, len(stream)]:
        out += assembler.feed(stream[previous:cut], 0)
        previous = cut
    assert out == lines
