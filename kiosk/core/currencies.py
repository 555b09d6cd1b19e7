"""ISO 4217 facts the voucher model rests on: which currency codes are in use, and how many decimal
places each one's minor unit has. Pure data.

``ACTIVE`` is every currency that is legal tender somewhere on 2026-01-01, as CLDR 47's supplemental
data records it (printed by ``scripts/dev/gen-currencies`` with the pinned babel==2.18.0); an amount
in any other code (a typo, a withdrawn currency, a fund or metal code such as XAU) is not a voucher.
"""

from __future__ import annotations

__all__ = ["ACTIVE", "minor_digits"]

ACTIVE = frozenset(
    """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD
    BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP
    CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP
    GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD
    JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD
    MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN
    NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB
    RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SYP SZL THB
    TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV
    WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
""".split()
)

#: ISO 4217 minor units that are not 2 (the standard's table, for the codes that differ).
_MINOR_DIGITS = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    "CLF": 4,
    "UYW": 4,
}


def minor_digits(currency: str) -> int:
    """How many decimal places the currency's minor unit has, per ISO 4217."""
    return _MINOR_DIGITS.get(currency, 2)
