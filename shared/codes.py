"""Shipment codes: 12 random digits and a Damm check digit (CUSTODY.md §1).

Damm's quasigroup catches every single-digit substitution and every swap of two
adjacent digits, and needs no letters, so couriers type codes on a numeric pad.
"""

from __future__ import annotations

import re
import secrets

CODE_LENGTH = 13  # 12 random digits + 1 check digit

# Damm (2004), a totally anti-symmetric quasigroup of order 10.
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)
_SEPARATORS = re.compile(r"[\s\-.]")


class InvalidCode(ValueError):
    """A typed or scanned code that is not a valid shipment code."""


def damm_digit(digits: str) -> int:
    interim = 0
    for ch in digits:
        interim = _DAMM[interim][ord(ch) - 48]
    return interim


def is_valid(code: str) -> bool:
    return len(code) == CODE_LENGTH and code.isascii() and code.isdigit() and damm_digit(code) == 0


def new_code() -> str:
    """A fresh random code (the caller retries on the rare collision)."""
    body = f"{secrets.randbelow(10**12):012d}"
    return body + str(damm_digit(body))


def normalize(text: str) -> str:
    """Accept `1234 5678 9012 3`, `1234-5678-9012-3` or plain digits; return plain digits.

    Raises InvalidCode with a sentence a courier can act on.
    """
    digits = _SEPARATORS.sub("", text or "")
    if not digits:
        raise InvalidCode("The code is empty: type the 13 digits under the QR label.")
    if not (digits.isascii() and digits.isdigit()):
        raise InvalidCode("A shipment code has digits only.")
    if len(digits) != CODE_LENGTH:
        raise InvalidCode(f"A shipment code has {CODE_LENGTH} digits; this one has {len(digits)}.")
    if damm_digit(digits) != 0:
        raise InvalidCode("The check digit does not match: one digit is mistyped or two are swapped.")
    return digits


def group(code: str) -> str:
    """`1234567890123` -> `1234 5678 9012 3` (how a person reads it)."""
    return " ".join(code[i : i + 4] for i in range(0, len(code), 4))
