"""Argon2id for passwords and PINs."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared.pins import verify_pin as verify_pin

_passwords = PasswordHasher()  # argon2id, library defaults (RFC 9106 low-memory profile)
# A 6-digit PIN has 10**6 values, so its real protection is the online rate limit;
# the hash only keeps a stolen database from handing PINs out for free.
_pins = PasswordHasher(time_cost=2, memory_cost=16 * 1024, parallelism=1)
_DUMMY = _passwords.hash("timing-equalizer")


def hash_password(password: str) -> str:
    return _passwords.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the user exists."""
    try:
        return _passwords.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_pin() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def hash_pin(pin: str) -> str:
    return _pins.hash(pin)
