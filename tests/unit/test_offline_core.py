from datetime import UTC, datetime, timedelta

from kiosk.core.offline import CachedCode, OfflineLimits, OfflineState, choose_code, refusal

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def code(name, shop, visibility, *, countries=("DK",), days=30, kind="amount", value=5000, unit="DKK"):
    expires = None if days is None else NOW + timedelta(days=days)
    return CachedCode(name, shop, visibility, tuple(countries), kind, value, unit, expires)


CODES = [
    code("OWN-LATE", "sko", "private", days=60),
    code("OWN-SOON", "sko", "private_public", days=10),
    code("OWN-DE", "sko", "private", countries=("DE",), days=1),
    code("OWN-EXPIRING", "sko", "private", days=0.01),
    code("GRON-PP", "gron", "private_public", days=5),
    code("GRON-PRIV", "gron", "private", days=1),
    code("PUBLIC-NOEXP", "rezip", "public", days=None),
]


def choose(shop, country="DK", codes=CODES):
    chosen = choose_code(codes, packaging_shop=shop, country=country, now=NOW, margin=timedelta(hours=1))
    return chosen.code if chosen else None


def test_own_shop_first_soonest_expiring_skipping_expiring_and_other_countries() -> None:
    assert choose("sko") == "OWN-SOON"
    assert choose("sko", "DE") == "OWN-DE"


def test_other_shops_get_public_and_private_public_only() -> None:
    assert choose("papir") == "GRON-PP"  # soonest of the shared ones; never GRON-PRIV or sko's private
    assert choose("papir", codes=[c for c in CODES if c.code != "GRON-PP"]) == "OWN-SOON"
    assert choose("papir", codes=[c for c in CODES if c.visibility == "private"]) is None
    assert choose(None, codes=[CODES[-1]]) == "PUBLIC-NOEXP"


def state(**changes):
    base = dict(
        unforwarded=0,
        unforwarded_value={},
        last_contact=NOW - timedelta(hours=1),
        clock_floor=NOW - timedelta(hours=1),
        expected_now=None,
    )
    return OfflineState(**{**base, **changes})


def test_limits() -> None:
    limits = OfflineLimits(max_issuances=3, max_value={"DKK": 12000}, max_offline_age=timedelta(days=1))
    ok_code = CODES[0]
    assert refusal(state(), limits, ok_code, NOW) is None
    assert refusal(state(unforwarded=3), limits, ok_code, NOW) == "count_limit"
    assert refusal(state(unforwarded_value={"DKK": 8000}), limits, ok_code, NOW) == "value_limit"
    assert refusal(state(unforwarded_value={"EUR": 10**9}), limits, ok_code, NOW) is None
    assert refusal(state(last_contact=NOW - timedelta(days=2)), limits, ok_code, NOW) == "offline_too_long"
    assert refusal(state(last_contact=None), limits, ok_code, NOW) == "never_synced"


def test_a_clock_set_back_or_jumping_is_not_trusted() -> None:
    limits = OfflineLimits()
    assert refusal(state(clock_floor=NOW + timedelta(hours=2)), limits, CODES[0], NOW) == "clock_untrusted"
    assert refusal(state(expected_now=NOW - timedelta(hours=3)), limits, CODES[0], NOW) == "clock_untrusted"
    assert refusal(state(expected_now=NOW + timedelta(seconds=30)), limits, CODES[0], NOW) is None
