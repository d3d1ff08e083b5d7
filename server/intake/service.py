"""Intake: a unit's software registers dossiers with an API key, idempotently by its own
dossier code (mã hồ sơ); a clerk does the same for a whole CSV/XLSX file.

Keys are 256-bit random strings, so they are stored as a plain SHA-256: a fast hash of a
high-entropy secret cannot be inverted or guessed by brute force, which is what argon2
buys for a low-entropy password or PIN; argon2 on every request would cost ~50 ms of CPU
(two threads at most) for nothing. The prefix, part of the key, finds its row.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import nacl.exceptions
import nacl.public
from sqlalchemy.ext.asyncio import AsyncConnection

from shared import codes
from shared.labels import label_url
from shared.timeutil import utcnow

from ..auth.limits import Limit, reserve
from ..auth.service import CurrentUser
from ..db.engine import Database
from ..errors import BadRequest, Conflict, NotFoundException, TooManyRequests
from ..keys import ServerKeys
from ..shipments import repository as shipments_repo
from ..shipments import service as shipments
from ..shipments.schemas import ShipmentCreate, ShipmentCreated
from . import repository

KEY_PREFIX = "hoso_ak_"
_KEY_RE = re.compile(r"^hoso_ak_([a-z2-7]{8})_([A-Za-z0-9_-]{43})$")
REPLAY_PIN_HOURS = 24  # a repeat within this answers the PIN too; after it, `pin` is null
KEY_ROLE = "clerk"  # what a key may do is its routes' `api_key` flag, not the role


class KeyProblem(Exception):
    """The key was not accepted: the sentence says why."""


# ---- keys --------------------------------------------------------------------------------------


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """(prefix, key): `hoso_ak_<8 base32 chars>_<43 base64url chars>` (256 random bits)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    prefix = "".join(secrets.choice(alphabet) for _ in range(8))
    return prefix, f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    prefix: str
    key: str  # shown once; only its hash is kept
    unit: str


async def create_key(db: Database, unit_code: str, name: str) -> IssuedKey:
    """A new key for the unit, with its own account (a clerk of the unit, no usable password)."""
    now = utcnow()
    async with db.write() as conn:
        unit = await repository.unit_row(conn, unit_code)
        if unit is None:
            raise NotFoundException(f"no unit with code {unit_code!r}; create it with `hoso unit add`")
        prefix, key = new_key()
        user_id = await repository.insert_key_user(
            conn,
            {
                "username": f"apikey-{prefix}",
                "full_name": name or f"Phần mềm của {unit_code} (khóa {prefix})",
                "password_hash": "!",  # not an argon2 hash: no password ever matches it
                "role": KEY_ROLE,
                "unit_id": unit.id,
                "active": True,
                "created_at": now,
            },
        )
        await repository.insert_key(
            conn,
            {
                "prefix": prefix,
                "secret_hash": _hash(key),
                "unit_id": unit.id,
                "user_id": user_id,
                "name": name,
                "created_at": now,
                "revoked_at": None,
            },
        )
    return IssuedKey(prefix=prefix, key=key, unit=unit.code)


def _prefix_of(text: str) -> str:
    text = text.strip()
    m = _KEY_RE.match(text)
    if m:
        return m.group(1)
    if text.startswith(KEY_PREFIX):
        text = text[len(KEY_PREFIX) :]
    return text.split("_", 1)[0]


async def revoke_key(db: Database, key_or_prefix: str) -> bool:
    """Revoke a key (given whole or by its prefix): refused from the next request on.
    False when it was revoked already."""
    prefix = _prefix_of(key_or_prefix)
    async with db.write() as conn:
        row = await repository.revoke_key(conn, prefix, utcnow())
    if row is None:
        raise NotFoundException(f"no API key with prefix {prefix!r}; `hoso apikey list` shows them")
    return row.revoked_at is None


async def list_keys(db: Database) -> list[Any]:
    async with db.read() as conn:
        return await repository.list_keys(conn)


def looks_like_key(text: str) -> bool:
    return text.startswith(KEY_PREFIX)


async def user_for_key(
    db: Database, key: str, client: str, per_client: int, window: timedelta
) -> CurrentUser:
    """The key's account, acting for its unit. A wrong or revoked key counts one try against
    the client (the login limit per client); past it the answer is 429, not 401. A right key is
    never counted: it is 256 random bits, so no guess can reach one."""
    m = _KEY_RE.match(key.strip())
    row = None
    if m:
        async with db.read() as conn:
            row = await repository.key_by_prefix(conn, m.group(1))
    if row is not None and hmac.compare_digest(row.secret_hash, _hash(key.strip())):
        if row.revoked_at is not None or not row.active:
            problem = "Khóa API này đã bị thu hồi; xin quản trị viên khóa mới. (This API key was revoked.)"
        else:
            return CurrentUser(
                id=row.id,
                username=row.username,
                role=row.role,
                unit_id=row.unit_id,
                unit_code=row.unit_code,
                full_name=row.full_name,
                unit_kind=row.unit_kind or "",
                api_key_id=row.key_id,
            )
    else:
        problem = (
            "Khóa API không đúng: gửi `Authorization: Bearer hoso_ak_…` hoặc `X-API-Key` đúng như "
            "khi được cấp. (The API key is not valid: send it exactly as it was issued.)"
        )
    now = utcnow()
    counted = await reserve(db, [Limit(f"apikey:client:{client}", per_client, window)], now)
    if not counted.allowed:
        wait = counted.retry_after_s(now)
        raise TooManyRequests(
            f"Quá nhiều khóa API sai từ địa chỉ này: thử lại sau {wait} giây. "
            f"(Too many wrong API keys from this address: try again in {wait} s.)",
            headers={"Retry-After": str(wait)},
        )
    raise KeyProblem(problem)


# ---- registering by dossier code ---------------------------------------------------------------


def fingerprint(data: ShipmentCreate) -> str:
    """SHA-256 of the request as decoded: member order, spacing and the time zone of `due_at`
    do not change it; any value does."""
    body = msgspec.to_builtins(data)
    body["due_at"] = data.due_at.astimezone(UTC).isoformat()
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()


def _seal(keys: ServerKeys, pin: str | None) -> bytes | None:
    if pin is None or keys.seal is None:
        return None
    return bytes(nacl.public.SealedBox(keys.seal.public_key).encrypt(pin.encode()))


def _unseal(keys: ServerKeys, sealed: bytes | None, created_at: datetime) -> str | None:
    if sealed is None or keys.seal is None or utcnow() - created_at > timedelta(hours=REPLAY_PIN_HOURS):
        return None
    try:
        return nacl.public.SealedBox(keys.seal).decrypt(sealed).decode()
    except nacl.exceptions.CryptoError:  # sealed to a key since replaced
        return None


def _different(dossier: str, code: str) -> Conflict:
    return Conflict(
        f"Mã hồ sơ {dossier!r} đã được đăng ký là bưu gửi {codes.group(code)} với nội dung khác; "
        "gửi lại đúng yêu cầu cũ, hoặc hủy bưu gửi đó rồi dùng mã hồ sơ khác. "
        f"(Dossier code {dossier!r} is already registered as {codes.group(code)} with different "
        "details: repeat the original request, or cancel that shipment and use another dossier code.)",
        extra={"code": code, "dossier_ref": dossier},
    )


def _by_hand(dossier: str, code: str) -> Conflict:
    return Conflict(
        f"Mã hồ sơ {dossier!r} đã được đăng ký tại quầy là bưu gửi {codes.group(code)}; "
        "không đăng ký lại. "
        f"(Dossier code {dossier!r} was registered at the counter as {codes.group(code)}; "
        "it is not registered again.)",
        extra={"code": code, "dossier_ref": dossier},
    )


@dataclass(frozen=True, slots=True)
class Intake:
    created: ShipmentCreated
    new: bool  # False: the same request again, answered with the first one's shipment


def _dossier(data: ShipmentCreate) -> str:
    dossier = data.dossier_ref.strip()
    if not dossier:
        raise BadRequest(
            "dossier_ref (mã hồ sơ) là bắt buộc khi đăng ký bằng khóa API: đó là khóa chống trùng. "
            "(dossier_ref is required with an API key: it makes a repeated request safe.)"
        )
    if dossier != data.dossier_ref or "\n" in dossier:
        raise BadRequest(
            "dossier_ref: mã hồ sơ không có khoảng trắng ở đầu, cuối hay xuống dòng. "
            "(No spaces around the dossier code, no line breaks.)"
        )
    return dossier


async def _replay(
    conn: AsyncConnection, keys: ServerKeys, base_url: str, record: Any, fp: str, dossier: str
) -> Intake:
    if record.code is None:  # pragma: no cover - a record is written with its shipment
        raise Conflict("Mã hồ sơ này đang được đăng ký; thử lại sau giây lát. (Being registered: retry.)")
    if record.fingerprint != fp:
        raise _different(dossier, record.code)
    registered = await shipments_repo.events_of(conn, record.shipment_id, types=["registered"])
    return Intake(
        created=ShipmentCreated(
            code=record.code,
            state="registered",
            label_url=f"{base_url}/api/v1/shipments/{record.code}/label.png",
            tracking_url=label_url(base_url, record.code, keys.label),
            pin=_unseal(keys, record.pin_sealed, record.created_at),
            head=registered[0].hash,
        ),
        new=False,
    )


async def register(
    db: Database, keys: ServerKeys, base_url: str, user: CurrentUser, data: ShipmentCreate
) -> Intake:
    """POST /api/v1/shipments with a key: the first request for a dossier code registers it
    (201), the same request again answers the same shipment (200), another request with that
    code is a 409. Twenty identical requests at once make one shipment: the record of
    (unit, kind, dossier code) is claimed first, in the shipment's own transaction."""
    dossier = _dossier(data)
    assert user.unit_id is not None
    fp = fingerprint(data)
    async with db.read() as conn:  # a repeat costs no argon2 and no write
        record = await repository.record_for(conn, user.unit_id, data.kind, dossier)
        if record is not None:
            return await _replay(conn, keys, base_url, record, fp, dossier)
        by_hand = await repository.registered_by_hand(conn, user.unit_id, data.kind, [dossier])
    if dossier in by_hand:
        raise _by_hand(dossier, by_hand[dossier])
    prepared = await shipments.prepare(db, data)
    now = utcnow()
    async with db.write() as conn:
        record_id = await repository.claim(
            conn,
            {
                "unit_id": user.unit_id,
                "kind": data.kind,
                "dossier_code": dossier,
                "fingerprint": fp,
                "shipment_id": None,
                "source": "api",
                "api_key_id": user.api_key_id,
                "pin_sealed": None,
                "created_at": now,
            },
        )
        if record_id is None:  # a parallel request with this code committed first
            record = await repository.record_for(conn, user.unit_id, data.kind, dossier)
            return await _replay(conn, keys, base_url, record, fp, dossier)
        created, ship_id = await shipments.insert_prepared(conn, db, keys, base_url, user, prepared, now)
        await repository.set_shipment(conn, record_id, ship_id, _seal(keys, created.pin))
        await repository.forget_sealed_pins(conn, now - timedelta(hours=REPLAY_PIN_HOURS))
    db.changed("registered", [created.code])
    return Intake(created=created, new=True)


async def visible(db: Database, user: CurrentUser, code: str) -> None:
    """404 for no such shipment, 403 when it is not the user's to see (the shipments scope)."""
    async with db.read() as conn:
        await shipments_repo.visible(conn, user, shipments.parse_code(code))
