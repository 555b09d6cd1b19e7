import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.core.codes import MAX_INPUT_CHARS, PackagingCode, Rejection, RejectReason, normalise

REZIP = re.compile(r"^[0-9]{2}.{2}([0-9A-Z]{26}|[0-9]{2,5})$")
ULID = "01JAYSCS07SVDQANFS61TF0XJN"

prefixes = st.tuples(
    st.text("0123456789", min_size=2, max_size=2),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=2, max_size=2),
).map("".join)
serials = st.one_of(
    st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=26, max_size=26),
    st.text("0123456789", min_size=2, max_size=5),
)
codes = st.tuples(prefixes, serials).map("".join)


@pytest.mark.parametrize(
    "raw, expected",
    [
        (f"10HS{ULID}", f"10HS{ULID}"),
        ("10HS0042", "10HS0042"),
        ("10HS42", "10HS42"),
        (f"  10HS{ULID}\r\n", f"10HS{ULID}"),
        (f"\t10HS{ULID}\t", f"10HS{ULID}"),
        (f"]Q110HS{ULID}\r", f"10HS{ULID}"),
        ("]C010HS0042\n", "10HS0042"),
        (f"https://re-zip.com/p/10HS{ULID}", f"10HS{ULID}"),
        (f"https://re-zip.com/p/10HS{ULID}/", f"10HS{ULID}"),
        (f"https://r.re-zip.com/scan?code=10HS{ULID}&x=1", f"10HS{ULID}"),
        ("https://r.re-zip.com/scan?c=10HS0042", "10HS0042"),
        (f"https://r.re-zip.com/?barcode=20GB{ULID}", f"20GB{ULID}"),
        (f"]Q1https://r.re-zip.com/x/20GB{ULID}\r\n", f"20GB{ULID}"),
    ],
)
def test_accepts_rezip_codes_bare_wrapped_and_noisy(raw: str, expected: str) -> None:
    result = normalise(raw)
    assert result == PackagingCode(expected)


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("", RejectReason.EMPTY),
        ("\r\n", RejectReason.EMPTY),
        ("   ", RejectReason.EMPTY),
        ("5701234567899", RejectReason.NOT_REZIP),  # an EAN-13 on a product
        ("10HS" + ULID.lower(), RejectReason.NOT_REZIP),
        ("10HS" + ULID + "X", RejectReason.NOT_REZIP),
        ("10HS1", RejectReason.NOT_REZIP),
        ("10HS123456", RejectReason.NOT_REZIP),
        ("AB12" + ULID, RejectReason.NOT_REZIP),
        ("10H S0042", RejectReason.NOT_REZIP),
        ("10HS\x1b0042", RejectReason.UNREADABLE),
        ("https://r.re-zip.com/", RejectReason.NOT_REZIP),
        ("https://r.re-zip.com/scan?code=hello", RejectReason.NOT_REZIP),
        ("x" * (MAX_INPUT_CHARS + 1), RejectReason.TOO_LONG),
    ],
)
def test_rejects_everything_else_with_a_reason(raw: str, reason: RejectReason) -> None:
    result = normalise(raw)
    assert isinstance(result, Rejection)
    assert result.reason is reason
    assert result.message  # a sentence a customer can read


def test_code_parts() -> None:
    item = normalise("10HS" + ULID)
    short = normalise("10HS0042")
    assert isinstance(item, PackagingCode) and isinstance(short, PackagingCode)
    assert (item.prefix, item.serial, item.is_item) == ("10HS", ULID, True)
    assert (short.prefix, short.serial, short.is_item) == ("10HS", "0042", False)


@given(codes)
def test_every_rezip_code_is_accepted_unchanged(code: str) -> None:
    assert normalise(code) == PackagingCode(code)


@given(codes, st.sampled_from(["", "\r", "\n", "\r\n", "\t", "  "]), st.sampled_from(["", "]Q1", "]E0", " "]))
def test_scanner_noise_never_changes_the_code(code: str, suffix: str, aim: str) -> None:
    assert normalise(aim + code + suffix) == PackagingCode(code)


@pytest.mark.parametrize(
    "raw",
    [
        f"https://shop.example/p/10HS{ULID}",
        f"https://re-zip.com.evil.example/p/10HS{ULID}",
        "https://evilre-zip.com/?code=10HS0042",
        "https://user@r.example/10HS0042",
        "https://[::1/10HS0042",
        f"myapp://re-zip.com/10HS{ULID}/../",
    ],
)
def test_urls_of_foreign_hosts_are_foreign_codes(raw: str) -> None:
    result = normalise(raw)
    assert isinstance(result, Rejection) and result.reason is RejectReason.NOT_REZIP


def test_url_hosts_are_configurable() -> None:
    raw = f"https://packaging.example/q/10HS{ULID}"
    assert isinstance(normalise(raw), Rejection)
    assert normalise(raw, url_hosts=["packaging.example"]) == PackagingCode(f"10HS{ULID}")
    assert normalise(f"https://a.packaging.example/q/10HS{ULID}", url_hosts=["*.packaging.example"]).value.startswith(
        "10HS"
    )  # type: ignore[union-attr]


@given(codes, st.sampled_from(["code", "c", "barcode"]))
def test_codes_inside_urls(code: str, parameter: str) -> None:
    safe = code.replace("%", "").replace("&", "").replace("#", "").replace("+", "").replace("?", "").replace("/", "")
    if safe != code:
        return  # a URL would need to escape it; such prefixes do not exist in practice
    assert normalise(f"https://r.re-zip.com/scan?{parameter}={code}") == PackagingCode(code)
    assert normalise(f"https://r.re-zip.com/a/b/{code}") == PackagingCode(code)


@given(st.text(max_size=300))
def test_anything_accepted_matches_the_rezip_pattern(text: str) -> None:
    result = normalise(text)
    if isinstance(result, PackagingCode):
        assert REZIP.match(result.value)
    else:
        assert isinstance(result.reason, RejectReason)


@given(st.binary(max_size=200))
def test_decoded_garbage_never_raises(data: bytes) -> None:
    result = normalise(data.decode("latin-1"))
    assert isinstance(result, (PackagingCode, Rejection))
