"""What a rejection means for the courier. The server answers in one English sentence
(API.md); the phone shows what to do about it in the courier's language, with the
server's words kept underneath for the dispatcher."""

from __future__ import annotations

import re

# (pattern in the server's reason, i18n key of the advice); the first match wins
_ADVICE = [
    (re.compile(r"is not assigned to"), "reject.not_assigned"),
    (re.compile(r"is not the current head"), "reject.chain_moved"),
    (re.compile(r"^conflict"), "reject.conflict"),
    (re.compile(r"final state|is not allowed in state|illegal transition"), "reject.illegal"),
    (re.compile(r"unknown shipment"), "reject.unknown"),
    (re.compile(r"^signature:|hash does not match|not enrolled|is not the signed-in user"), "reject.device"),
    (re.compile(r"needs|must be|location is null"), "reject.incomplete"),
]


def advice(reason: str) -> str:
    """The i18n key of what the courier should do about a rejected record."""
    for pattern, key in _ADVICE:
        if pattern.search(reason or ""):
            return key
    return "reject.other"
