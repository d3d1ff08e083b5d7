"""Argon2id for passwords and PINs."""

from __future__ import annotations

import asyncio
import secrets
from functools import partial
from weakref import WeakKeyDictionary

import anyio.to_thread
from anyio import CapacityLimiter
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


# argon2 takes tens of milliseconds of CPU: run on the event loop it stalls every other
# request. In threads (argon2 releases the GIL), at most this many at once, so a flood of
# wrong passwords cannot occupy every core either.
_HASHING_THREADS = 2
_limiters: WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = WeakKeyDictionary()


async def _off_loop(fn, *args: str | None) -> object:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = CapacityLimiter(_HASHING_THREADS)
    return await anyio.to_thread.run_sync(partial(fn, *args), limiter=limiter)


async def hash_password_async(password: str) -> str:
    return str(await _off_loop(hash_password, password))


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    return bool(await _off_loop(verify_password, password_hash, password))


async def hash_pin_async(pin: str) -> str:
    return str(await _off_loop(hash_pin, pin))


async def verify_pin_async(pin_hash: str, pin: str) -> bool:
    return bool(await _off_loop(verify_pin, pin_hash, pin))
