"""Content-addressed attachments (signatures, photos), stored on disk, append-only."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import secrets
import warnings
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.timeutil import utcnow

from ..auth.service import CurrentUser
from ..db.engine import Database
from ..db.models import attachments, custody_events, handovers, users
from ..errors import BadRequest, NotFoundException, TooLarge, TooManyRequests, Unprocessable
from ..shipments import repository

_MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}
# what each image type is, for the sentences and the pixel limits (Settings has the numbers)
KIND = {"image/png": "signature", "image/jpeg": "photo"}
MAX_PIXELS: Mapping[str, int] = {"image/png": 2_000_000, "image/jpeg": 12_000_000}
MAX_JSON_DEPTH = 32
MAX_UNREFERENCED_BYTES = 50 * 1024 * 1024
# an upload counts as not yet referenced for this long, unless an event or handover names it;
# older ones no longer count against the account
UNREFERENCED_WINDOW = timedelta(hours=24)


def _write_durably(target: Path, body: bytes) -> None:
    # unique per write: two requests storing the same attachment at once must not share it
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(body)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)


def _too_many_pixels(content_type: str, size: tuple[int, int] | None, limit: int) -> TooLarge:
    kind = KIND.get(content_type, "image")
    has = f"; this one is {size[0]}×{size[1]} = {size[0] * size[1]:,} pixels" if size else ""
    return TooLarge(
        f"A {kind} ({content_type}) may have at most {limit:,} pixels{has}. "
        "Scale it down (a signature needs about 800×300) and send it again."
    )


def _check_image(body: bytes, content_type: str, max_pixels: int | None = None) -> None:
    """A signature or photo must decode (a damaged one would be useless as evidence) and stay
    within its pixel limit: its header is read before any pixel is decoded."""
    from PIL import Image, UnidentifiedImageError

    limit = max_pixels if max_pixels is not None else MAX_PIXELS.get(content_type, 2_000_000)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(body)) as img:
                if img.width * img.height > limit:
                    raise _too_many_pixels(content_type, img.size, limit)
                img.verify()
    except Image.DecompressionBombError:
        raise _too_many_pixels(content_type, None, limit) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        kind = content_type.split("/")[1].upper()
        raise BadRequest(f"The {kind} is damaged and cannot be decoded ({exc}); take it again.") from None


def _depth(value: Any) -> int:
    """How deep arrays and objects nest, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item if isinstance(v, dict | list))
    return deepest


def _check_json(body: bytes, max_depth: int) -> None:
    too_deep = Unprocessable(
        f"JSON attachments (stroke data) may nest at most {max_depth} levels deep; this one "
        "nests deeper. Send the strokes as a list of lists of points."
    )
    try:
        value = msgspec.json.decode(body)
    except RecursionError:
        raise too_deep from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}") from None
    if _depth(value) > max_depth:
        raise too_deep


def path_for(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / sha256


def check_content(
    content_type: str,
    body: bytes,
    limits: Mapping[str, int],
    *,
    max_pixels: Mapping[str, int] | None = None,
    max_json_depth: int = MAX_JSON_DEPTH,
) -> None:
    """Type, size, decodability, pixels of an image and depth of JSON: a 4xx naming the limit."""
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
        _check_image(body, content_type, (max_pixels or MAX_PIXELS).get(content_type))
    if content_type == "application/json":
        _check_json(body, max_json_depth)


def _unreferenced_bytes(user_id: int, actor: Any, since: Any) -> Any:
    """Bytes this account uploaded since `since` that neither one of its events nor a
    handover names yet."""
    a, e, h = attachments.c, custody_events.c, handovers.c
    named_by_event = exists().where(
        e.actor == actor, e.received_at >= since - UNREFERENCED_WINDOW, e.body.contains(a.sha256)
    )
    named_by_handover = exists().where(or_(h.signature == a.sha256, h.strokes == a.sha256))
    return (
        select(func.coalesce(func.sum(a.size), 0))
        .where(a.uploaded_by == user_id, a.created_at >= since)
        .where(~named_by_event, ~named_by_handover)
    )


async def store(
    db: Database,
    root: Path,
    sha256: str,
    content_type: str,
    body: bytes,
    user_id: int,
    *,
    max_unreferenced: int = MAX_UNREFERENCED_BYTES,
) -> bool:
    """Store an attachment; True if new, False if it was already there. Checks the hash, and
    that the account's uploads no event references yet stay under max_unreferenced bytes
    (counted and inserted in one transaction, the account's row locked on PostgreSQL)."""
    actual = hashlib.sha256(body).hexdigest()
    if actual != sha256:
        raise BadRequest(
            f"The body's SHA-256 is {actual}, not the {sha256} in the path: "
            "the upload was damaged or the wrong file was sent."
        )
    async with db.read() as conn:
        if await conn.scalar(select(attachments.c.sha256).where(attachments.c.sha256 == sha256)):
            return False
    now = utcnow()
    since = now - UNREFERENCED_WINDOW

    def refusal(pending: int) -> TooManyRequests:
        return TooManyRequests(
            f"This account has {pending // (1024 * 1024)} MiB of attachments uploaded in the last "
            f"{UNREFERENCED_WINDOW.total_seconds() / 3600:.0f} hours that no custody event "
            f"references; at most {max_unreferenced // (1024 * 1024)} MiB may wait. Sync the "
            "events that use them first, then upload the rest.",
            headers={"Retry-After": "60"},
        )

    async with db.read() as conn:
        role = await conn.scalar(select(users.c.role).where(users.c.id == user_id))
        actor = f"{role}:{user_id}"
        pending = int(await conn.scalar(_unreferenced_bytes(user_id, actor, since)) or 0)
    if pending + len(body) > max_unreferenced:
        raise refusal(pending)
    target = path_for(root, sha256)
    existed = target.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(_write_durably, target, body)
    ins = pg_insert if db.dialect == "postgresql" else sqlite_insert
    try:
        async with db.write() as conn:
            if db.dialect == "postgresql":  # parallel uploads of one account wait for each other
                await conn.execute(select(users.c.id).where(users.c.id == user_id).with_for_update())
            pending = int(await conn.scalar(_unreferenced_bytes(user_id, actor, since)) or 0)
            if pending + len(body) > max_unreferenced:
                raise refusal(pending)
            result = await conn.execute(
                ins(attachments)
                .values(
                    sha256=sha256,
                    content_type=content_type,
                    size=len(body),
                    uploaded_by=user_id,
                    created_at=now,
                )
                .on_conflict_do_nothing()
            )
    except TooManyRequests:
        if not existed:
            async with db.read() as conn:
                stored = await conn.scalar(select(attachments.c.sha256).where(attachments.c.sha256 == sha256))
            if stored is None:
                target.unlink(missing_ok=True)
        raise
    return bool(result.rowcount)


_EXTENSION = {"image/png": "png", "image/jpeg": "jpg", "application/json": "json", "application/pdf": "pdf"}


def served_headers(sha256: str, content_type: str) -> dict[str, str]:
    """Headers for serving an attachment: never sniffed into another type, always a download
    named by its hash (no uploaded text reaches the header), cached for good (it is immutable)."""
    return {
        "Cache-Control": "private, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'attachment; filename="{sha256}.{_EXTENSION.get(content_type, "bin")}"',
    }


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
