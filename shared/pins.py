"""Checking a typed PIN against its argon2 hash: the server at the door and the citizen's
page, and the phone offline (the assignment carries the hash as `pin_check`)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# verification reads its cost parameters from the hash, so one hasher checks every PIN hash
_verifier = PasswordHasher()


def verify_pin(pin_hash: str, pin: str) -> bool:
    try:
        return _verifier.verify(pin_hash, pin)
    except (VerificationError, InvalidHashError):
        return False
