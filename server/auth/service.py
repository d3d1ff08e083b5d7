"""Units, users, tokens and devices."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from shared.crypto import check_public_key
from shared.timeutil import utcnow

from ..custody import enrolments
from ..db.engine import Database
from ..db.models import api_tokens, devices, units, users
from ..errors import BadRequest, Conflict, NotAuthorizedException, NotFoundException
from ..keys import ServerKeys
from .passwords import hash_password, verify_password

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

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.id}"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def add_unit(db: Database, code: str, name: str, kind: str) -> int:
    if kind not in UNIT_KINDS:
        raise BadRequest(f"kind must be one of {', '.join(UNIT_KINDS)}")
    try:
        async with db.write() as conn:
            result = await conn.execute(
                insert(units).values(code=code, name=name, kind=kind, created_at=utcnow())
            )
            return int(result.inserted_primary_key[0])
    except IntegrityError:
        raise Conflict(f"a unit with code {code!r} already exists") from None


async def unit_id_for(db: Database, code: str) -> int:
    async with db.read() as conn:
        uid = await conn.scalar(select(units.c.id).where(units.c.code == code))
    if uid is None:
        raise NotFoundException(f"no unit with code {code!r}; create it with `hoso unit add`")
    return int(uid)


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
    password_hash = hash_password(password)
    try:
        async with db.write() as conn:
            result = await conn.execute(
                insert(users).values(
                    username=username,
                    full_name=full_name,
                    password_hash=password_hash,
                    role=role,
                    unit_id=unit_id,
                    active=True,
                    created_at=utcnow(),
                )
            )
            return int(result.inserted_primary_key[0])
    except IntegrityError:
        raise Conflict(f"the username {username!r} is taken") from None


_USER_COLUMNS = (
    users.c.id,
    users.c.username,
    users.c.role,
    users.c.unit_id,
    users.c.full_name,
    units.c.code.label("unit_code"),
)


def _user_from_row(row) -> CurrentUser:  # type: ignore[no-untyped-def]
    return CurrentUser(
        id=row.id,
        username=row.username,
        role=row.role,
        unit_id=row.unit_id,
        unit_code=row.unit_code,
        full_name=row.full_name,
    )


async def issue_token(db: Database, username: str, password: str, ttl_s: int) -> tuple[str, CurrentUser]:
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(*_USER_COLUMNS, users.c.password_hash, users.c.active)
                .select_from(users.outerjoin(units, units.c.id == users.c.unit_id))
                .where(users.c.username == username)
            )
        ).first()
    ok = verify_password(row.password_hash if row else None, password)
    if not ok or row is None or not row.active:
        raise NotAuthorizedException("Wrong username or password.")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with db.write() as conn:
        await conn.execute(delete(api_tokens).where(api_tokens.c.expires_at < now))
        await conn.execute(
            insert(api_tokens).values(
                token_hash=_token_hash(token),
                user_id=row.id,
                created_at=now,
                expires_at=now + timedelta(seconds=ttl_s),
            )
        )
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
    return db.cache.setdefault("tokens", {})


async def revoke_token(db: Database, token: str) -> None:
    """Sign out: the token is refused from the next request on."""
    key = _token_hash(token)
    async with db.write() as conn:
        await conn.execute(delete(api_tokens).where(api_tokens.c.token_hash == key))
    _token_cache(db).pop(key, None)


async def _read_token(db: Database, key: str) -> tuple[CurrentUser, datetime, bool, float]:
    """The token's user, its expiry and whether the account is active, as the cache keeps them."""
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(*_USER_COLUMNS, users.c.active, api_tokens.c.expires_at)
                .select_from(
                    api_tokens.join(users, users.c.id == api_tokens.c.user_id).outerjoin(
                        units, units.c.id == users.c.unit_id
                    )
                )
                .where(api_tokens.c.token_hash == key)
            )
        ).first()
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
    async with db.write() as conn:
        existing = (
            await conn.execute(
                select(devices.c.id, devices.c.user_id, devices.c.revoked_at).where(
                    devices.c.public_key == public_key
                )
            )
        ).first()
        if existing is not None:
            if existing.user_id != user.id or existing.revoked_at is not None:
                raise Conflict("This device key is enrolled to another account or revoked.")
            return int(existing.id)  # re-enrolment after a lost response is harmless
        now = utcnow()
        result = await conn.execute(
            insert(devices).values(user_id=user.id, public_key=public_key, label=label, created_at=now)
        )
        device_id = int(result.inserted_primary_key[0])
        await enrolments.record(conn, keys, device_id, user.actor, public_key, now)  # a log leaf
        return device_id


async def list_units(db: Database) -> list[dict]:
    async with db.read() as conn:
        rows = (await conn.execute(select(units).order_by(units.c.code))).all()
    return [dict(r._mapping) for r in rows]
