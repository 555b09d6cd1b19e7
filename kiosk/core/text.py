"""Text from outside (backend answers, bundles, shop profiles) as the kiosk may keep it. Pure.

One rule for every free-text field a shop or the backend sends: what a customer reads must be what
was sent, minus what can only hurt. Lone surrogates (which no encoder can write) become U+FFFD;
C0 and C1 control characters go, except line breaks in multi-line fields (tabs become spaces);
bidirectional embedding, override and isolate controls go, because they can reorder the text beside
them on screen (a code that reads differently from what it is); Unicode noncharacters go.
"""

from __future__ import annotations

import re

__all__ = ["clean_text"]

_BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_DROP = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f" + _BIDI_CONTROLS + "\ufdd0-\ufdef\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str, *, multiline: bool = True) -> str:
    """``text`` without what must never reach a screen, a printer or a log; see the module's rules."""
    text = _SURROGATE.sub("\ufffd", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = _DROP.sub("", text)
    if not multiline:
        text = " ".join(text.split("\n"))
    return text
