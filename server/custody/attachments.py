"""Content-addressed attachments (signatures, photos), stored on disk, append-only."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from pathlib import Path

import msgspec
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.timeutil import utcnow

from ..auth.service import CurrentUser
from ..db.engine import Database
from ..db.models import attachments
from ..errors import BadRequest, NotFoundException, TooLarge
from ..shipments import repository

_MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}


def _write_durably(target: Path, body: bytes) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(body)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)


def _check_image(body: bytes, content_type: str) -> None:
    """A signature or photo must decode: a damaged one would be useless as evidence."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(body)) as img:
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        kind = content_type.split("/")[1].upper()
        raise BadRequest(f"The {kind} is damaged and cannot be decoded ({exc}); take it again.") from None


def path_for(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / sha256


def check_content(content_type: str, body: bytes, limits: dict[str, int]) -> None:
    if content_type not in limits:
        raise BadRequest(f"Content-Type must be one of {', '.join(limits)}; got {content_type or 'none'}.")
    limit = limits[content_type]
    if len(body) > limit:
        raise TooLarge(
            f"{content_type} attachments are limited to {limit // 1024} KiB; this one has "
            f"{len(body) // 1024} KiB."
        )
    if not body:
        raise BadRequest("The attachment is empty.")
    magic = _MAGIC.get(content_type)
    if magic and not body.startswith(magic):
        raise BadRequest(f"The body is not a {content_type.split('/')[1].upper()} file.")
    if magic:
        _check_image(body, content_type)
    if content_type == "application/json":
        try:
            msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise BadRequest(f"The body is not valid JSON: {exc}") from None


async def store(db: Database, root: Path, sha256: str, content_type: str, body: bytes, user_id: int) -> bool:
    """Store an attachment; True if new, False if it was already there. Checks the hash."""
    actual = hashlib.sha256(body).hexdigest()
    if actual != sha256:
        raise BadRequest(
            f"The body's SHA-256 is {actual}, not the {sha256} in the path: "
            "the upload was damaged or the wrong file was sent."
        )
    async with db.read() as conn:
        if await conn.scalar(select(attachments.c.sha256).where(attachments.c.sha256 == sha256)):
            return False
    target = path_for(root, sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(_write_durably, target, body)
    ins = pg_insert if db.dialect == "postgresql" else sqlite_insert
    async with db.write() as conn:
        result = await conn.execute(
            ins(attachments)
            .values(
                sha256=sha256,
                content_type=content_type,
                size=len(body),
                uploaded_by=user_id,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing()
        )
    return bool(result.rowcount)


async def load(db: Database, root: Path, sha256: str) -> tuple[str, bytes]:
    async with db.read() as conn:
        row = (
            await conn.execute(select(attachments.c.content_type).where(attachments.c.sha256 == sha256))
        ).first()
    if row is None:
        raise NotFoundException(f"No attachment {sha256} has been uploaded.")
    return row.content_type, path_for(root, sha256).read_bytes()


async def load_visible(db: Database, root: Path, user: CurrentUser, sha256: str) -> tuple[str, bytes]:
    """An attachment as this user may see it (the unit scope of the shipments naming it);
    one they may not see is answered like one that does not exist."""
    async with db.read() as conn:
        allowed = await repository.may_see_attachment(conn, user, sha256)
    if not allowed:
        raise NotFoundException(f"No attachment {sha256} has been uploaded.")
    return await load(db, root, sha256)


async def present(db: Database, hashes: set[str]) -> set[str]:
    if not hashes:
        return set()
    async with db.read() as conn:
        rows = (
            await conn.execute(select(attachments.c.sha256).where(attachments.c.sha256.in_(hashes)))
        ).all()
    return {r.sha256 for r in rows}
