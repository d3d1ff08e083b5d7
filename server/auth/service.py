"""Units, users, tokens and devices."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil
from typing import Any

from shared.crypto import check_public_key
from shared.timeutil import utcnow

from ..custody import enrolments
from ..db.engine import Database
from ..errors import BadRequest, Conflict, NotAuthorizedException, NotFoundException, TooManyRequests
from ..keys import ServerKeys
from ..settings import Settings
from . import repository
from .limits import Limit, release, reserve
from .passwords import hash_password_async, verify_password_async

ROLES = ("courier", "clerk", "dispatcher", "admin", "auditor")
UNIT_KINDS = ("post_office", "one_stop_shop")


@dataclass(frozen=True, slots=True)
class CurrentUser:
    id: int
    username: str
    role: str
    unit_id: int | None
    unit_code: str | None
    full_name: str = ""
    unit_kind: str = ""  # post_office | one_stop_shop ("" without a unit)
    api_key_id: int | None = None  # signed in with a unit's API key (server/intake), not a password

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.id}"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def add_unit(db: Database, code: str, name: str, kind: str) -> int:
    if kind not in UNIT_KINDS:
        raise BadRequest(f"kind must be one of {', '.join(UNIT_KINDS)}")
    try:
        return await repository.insert_unit(db, code, name, kind, utcnow())
    except repository.Duplicate:
        raise Conflict(f"a unit with code {code!r} already exists") from None


async def unit_id_for(db: Database, code: str) -> int:
    uid = await repository.unit_id_for_code(db, code)
    if uid is None:
        raise NotFoundException(f"no unit with code {code!r}; create it with `hoso unit add`")
    return uid


async def add_user(
    db: Database,
    username: str,
    password: str,
    role: str,
    unit_code: str | None,
    full_name: str = "",
) -> int:
    if role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}")
    if len(password) < 8:
        raise BadRequest("the password needs at least 8 characters")
    unit_id = await unit_id_for(db, unit_code) if unit_code else None
    if role in ("courier", "clerk") and unit_id is None:
        raise BadRequest(f"a {role} belongs to a unit: give --unit CODE")
    password_hash = await hash_password_async(password)
    try:
        return await repository.insert_user(
            db,
            {
                "username": username,
                "full_name": full_name,
                "password_hash": password_hash,
                "role": role,
                "unit_id": unit_id,
                "active": True,
                "created_at": utcnow(),
            },
        )
    except repository.Duplicate:
        raise Conflict(f"the username {username!r} is taken") from None


def _user_from_row(row: Any) -> CurrentUser:
    return CurrentUser(
        id=row.id,
        username=row.username,
        role=row.role,
        unit_id=row.unit_id,
        unit_code=row.unit_code,
        full_name=row.full_name,
        unit_kind=row.unit_kind or "",
    )


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """Wrong passwords allowed per account and per client within `window` (Settings)."""

    per_account: int = 10
    per_client: int = 30
    window: timedelta = timedelta(minutes=15)

    @classmethod
    def of(cls, settings: Settings) -> LoginLimits:
        return cls(
            settings.login_failures_per_account,
            settings.login_failures_per_client,
            timedelta(seconds=settings.login_window_s),
        )


def _login_limits(username: str, client: str | None, limits: LoginLimits) -> list[Limit]:
    out = [Limit(f"login:account:{username.lower()}", limits.per_account, limits.window)]
    if client is not None:
        out.append(Limit(f"login:client:{client}", limits.per_client, limits.window))
    return out


async def issue_token(
    db: Database,
    username: str,
    password: str,
    ttl_s: int,
    *,
    client: str | None = None,
    limits: LoginLimits | None = None,
) -> tuple[str, CurrentUser]:
    """A new access token for a right username and password. Each try counts against the
    account (and the client, when given) before the password is checked; past the limit the
    answer is 429 until the window ends, whatever the password."""
    now = utcnow()
    counted = _login_limits(username, client, limits or LoginLimits())
    reservation = await reserve(db, counted, now)
    if not reservation.allowed:
        wait = reservation.retry_after_s(now)
        raise TooManyRequests(
            f"Too many wrong passwords for this account or from this address: try again in "
            f"{ceil(wait / 60)} minute(s), at {reservation.retry_at.strftime('%H:%M')} UTC.",
            headers={"Retry-After": str(wait)},
        )
    row = await repository.login_row(db, username)
    ok = await verify_password_async(row.password_hash if row else None, password)
    if not ok or row is None or not row.active:
        raise NotAuthorizedException("Wrong username or password.")
    await release(db, counted)
    token = secrets.token_urlsafe(32)
    await repository.insert_token(db, _token_hash(token), row.id, now, ttl_s)
    return token, _user_from_row(row)


class TokenProblem(Exception):
    pass


# A valid token's user is kept in memory for TOKEN_CACHE_SECONDS after it was read, so a
# phone syncing batch after batch costs no database round trip per request (about 1.7 ms
# of a 100-event batch, bench/ingest.py). Expiry is still checked on every request; signing
# out drops the token at once. Only a change made to the database from outside this server
# (an operator's edit) takes up to TOKEN_CACHE_SECONDS to apply.
TOKEN_CACHE_SECONDS = 5.0
_TOKEN_CACHE_MAX = 10_000
_clock = time.monotonic  # a test moves it on


def _token_cache(db: Database) -> dict[str, tuple[CurrentUser, datetime, bool, float]]:
    tokens: dict[str, tuple[CurrentUser, datetime, bool, float]] = db.cache.setdefault("tokens", {})
    return tokens


async def revoke_token(db: Database, token: str) -> None:
    """Sign out: the token is refused from the next request on."""
    key = _token_hash(token)
    await repository.delete_token(db, key)
    _token_cache(db).pop(key, None)


async def _read_token(db: Database, key: str) -> tuple[CurrentUser, datetime, bool, float]:
    """The token's user, its expiry and whether the account is active, as the cache keeps them."""
    row = await repository.token_row(db, key)
    if row is None:
        raise TokenProblem("The access token is not valid: sign in again.")
    return _user_from_row(row), row.expires_at, row.active, _clock()


async def user_for_token(db: Database, token: str) -> CurrentUser:
    key = _token_hash(token)
    cache = _token_cache(db)
    entry = cache.get(key)
    if entry is None or _clock() - entry[3] >= TOKEN_CACHE_SECONDS:
        cache.pop(key, None)
        entry = await _read_token(db, key)
        if len(cache) >= _TOKEN_CACHE_MAX:
            cache.clear()
        cache[key] = entry
    user, expires_at, active, _ = entry
    if expires_at <= utcnow():
        del cache[key]
        raise TokenProblem("The access token has expired: sign in again.")
    if not active:
        raise TokenProblem("This account is disabled.")
    return user


async def enroll_device(
    db: Database, keys: ServerKeys, user: CurrentUser, public_key: str, label: str
) -> int:
    try:
        check_public_key(public_key)
    except ValueError as exc:
        raise BadRequest(f"public_key is not a raw Ed25519 key in base64url: {exc}") from None
    device_id = await repository.enroll_device_key(
        db,
        user.id,
        public_key,
        label,
        utcnow(),
        # a new key's server-signed enrolment record is a log leaf, in the same transaction
        on_new=lambda conn, dev, now: enrolments.record(conn, keys, dev, user.actor, public_key, now),
    )
    if device_id is None:
        raise Conflict("This device key is enrolled to another account or revoked.")
    return device_id  # re-enrolment after a lost response is harmless


async def list_units(db: Database) -> list[dict[str, Any]]:
    return await repository.all_units(db)
