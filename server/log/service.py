"""The append-only Merkle log of accepted events (CUSTODY.md §5).

Appends (repository.py) happen inside the transaction that accepts the events, so an
event is in the log exactly when it is in the chain. On PostgreSQL the row lock of
log_head (the log's size and right edge) gives appends one total order; on SQLite the
single writer already does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from shared import merkle
from shared.bundle import head_message
from shared.crypto import b64url_decode
from shared.timeutil import utcnow

from ..db.engine import Database
from ..db.executor import CoreExecutor
from ..db.models import cosignatures, log_nodes, tree_heads, units, witnesses
from ..db.results import inserted_id
from ..errors import BadRequest, Conflict, NotFoundException, PermissionDeniedException
from ..keys import ServerKeys
from . import repository, tiles


async def _size(conn: AsyncConnection) -> int:
    last = await conn.scalar(select(func.max(log_nodes.c.idx)).where(log_nodes.c.level == 0))
    return 0 if last is None else int(last) + 1


async def size(db: Database) -> int:
    async with db.read() as conn:
        return await _size(conn)


def _nodes_query(keys: set[tuple[int, int]]) -> tuple[str, dict[str, int]]:
    """Plain SQL text: each proof has its own shape, and building it through the SQL
    expression compiler cost more than the query itself."""
    ordered = sorted(keys)
    cond = " OR ".join(f"(level = :l{n} AND idx = :i{n})" for n in range(len(ordered)))
    params: dict[str, int] = {}
    for n, (level, idx) in enumerate(ordered):
        params[f"l{n}"], params[f"i{n}"] = level, idx
    return f"SELECT level, idx, hash FROM log_nodes WHERE {cond}", params


def _check_found(
    found: dict[tuple[int, int], bytes], keys: set[tuple[int, int]]
) -> dict[tuple[int, int], bytes]:
    if len(found) != len(keys):
        missing = sorted(keys - found.keys())[:3]
        raise RuntimeError(f"Merkle log nodes missing from the database: {missing}")
    return found


# Nodes at tree level 8 and up (each the root of 256 or more leaves) are kept in the process
# once read: a stored node never changes (the log only appends), there are about n/128 of
# them, and they make up most of a proof at a million leaves. Lower nodes are read each time.
CACHED_LEVEL = 8
_NODE_CACHE = "log.nodes"


def _node_cache(cache: dict[str, Any] | None) -> dict[tuple[int, int], bytes]:
    if cache is None:
        return {}
    nodes: dict[tuple[int, int], bytes] = cache.setdefault(_NODE_CACHE, {})
    return nodes


async def fetch_nodes(
    conn: AsyncConnection, keys: set[tuple[int, int]], cache: dict[str, Any] | None = None
) -> dict[tuple[int, int], bytes]:
    """The stored nodes at these (level, index) positions, in at most one indexed query."""
    known = _node_cache(cache)
    found = {k: known[k] for k in keys if k in known}
    wanted = keys - found.keys()
    if wanted:
        sql, params = _nodes_query(wanted)
        for r in (await conn.execute(text(sql), params)).all():
            h = bytes(r.hash)
            found[(r.level, r.idx)] = h
            if cache is not None and r.level >= CACHED_LEVEL:
                known[(r.level, r.idx)] = h
    return _check_found(found, keys)


R = TypeVar("R")


async def _run(
    conn: AsyncConnection, fn: Callable[[merkle.NodeGetter], R], cache: dict[str, Any] | None = None
) -> R:
    """Evaluate fn(get) against stored nodes with a single query."""
    nodes = await fetch_nodes(conn, merkle.needed_nodes(fn), cache)
    return fn(lambda level, idx: nodes[(level, idx)])


async def append(conn: AsyncConnection, leaves: list[bytes]) -> int:
    """repository.append on a `Database.write()` connection: the first new leaf's index."""
    return await conn.run_sync(lambda c: repository.append(CoreExecutor(c), leaves))


async def root(conn: AsyncConnection, tree_size: int, cache: dict[str, Any] | None = None) -> bytes:
    return await _run(conn, lambda get: merkle.tree_root(tree_size, get), cache)


def _head_dict(row: Any) -> dict[str, Any]:
    return {"size": row.size, "root": row.root, "timestamp": row.timestamp, "sig": row.sig}


async def signed_head(db: Database, keys: ServerKeys) -> dict[str, Any]:
    """The newest signed tree head, signing a new one if the log grew since the last."""
    if not db.is_sqlite:  # one statement: the size and the newest head
        last = (await db.pg_fetch(repository.PG_HEAD))[0]
        current = int(last["current"])
        if last["size"] == current:
            return {k: last[k] for k in ("size", "root", "timestamp", "sig")}
        async with db.read() as conn:
            root_hex = (await root(conn, current, db.cache)).hex()
    else:
        async with db.read() as conn:
            row = (await conn.execute(repository.SIZE_AND_HEAD)).first()
            if row is not None:
                current = _count(row.last)
                if row.size == current:
                    return _head_dict(row)
            else:
                current = _count(await conn.scalar(repository.SIZE))
            root_hex = (await root(conn, current, db.cache)).hex()
    timestamp = int(time.time() * 1000)
    sig = keys.log.sign_b64(head_message(current, root_hex, timestamp))
    ins = pg_insert if db.dialect == "postgresql" else sqlite_insert
    async with db.write() as conn:
        await conn.execute(
            ins(tree_heads)
            .values(size=current, root=root_hex, timestamp=timestamp, sig=sig, key=keys.log.public_key_b64)
            .on_conflict_do_nothing()
        )
        written = (await conn.execute(select(tree_heads).where(tree_heads.c.size == current))).first()
    return _head_dict(written)


def _count(last: Any) -> int:
    return 0 if last is None else int(last) + 1


# sizes and indexes are bigints in the database: a number past them names no tree
MAX_TREE_SIZE = 2**63 - 1


def _within_bigint(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and value > MAX_TREE_SIZE:
            raise BadRequest(
                f"{name} must be at most the log size (GET /api/v1/log/head); {value} is more "
                f"than any log can hold (2^63 - 1 leaves)."
            )


def _pg_getter(rows: list[Any]) -> merkle.NodeGetter:
    """The nodes of a PG_INCLUSION / PG_CONSISTENCY answer, for merkle's proof functions."""
    nodes = {(r["lv"], r["idx"]): bytes(r["hash"]) for r in rows if r["hash"] is not None}

    def get(level: int, idx: int) -> bytes:
        try:
            return nodes[(level, idx)]
        except KeyError:
            raise RuntimeError(f"Merkle log node missing from the database: {(level, idx)}") from None

    return get


def _bad_inclusion_size(index: int, current: int) -> BadRequest:
    return BadRequest(f"size must be more than the leaf's index {index} and at most the log size {current}.")


async def inclusion(db: Database, leaf_hex: str, tree_size: int | None) -> dict[str, Any]:
    _within_bigint(size=tree_size)
    if not db.is_sqlite:  # one statement: the leaf's index, the sizes and the proof's nodes
        rows = await db.pg_fetch(repository.PG_INCLUSION, leaf_hex, tree_size)
        index = rows[0]["i"]
        if index is None:
            raise NotFoundException(f"No accepted event has the hash {leaf_hex}.")
        current, n = int(rows[0]["current"]), int(rows[0]["n"])
        if not index < n <= current:
            raise _bad_inclusion_size(index, current)
        proof = merkle.inclusion_path(index, n, _pg_getter(rows))
        return {"index": index, "size": n, "proof": [p.hex() for p in proof]}
    async with db.read() as conn:
        row = (await conn.execute(repository.INDEX_AND_SIZE, {"h": leaf_hex})).one()
        index = row.idx
        if index is None:
            raise NotFoundException(f"No accepted event has the hash {leaf_hex}.")
        current = _count(row.last)
        n = current if tree_size is None else tree_size
        if not index < n <= current:
            raise _bad_inclusion_size(index, current)
        proof = await inclusion_proof(conn, index, n, db.cache)
    return {"index": index, "size": n, "proof": [p.hex() for p in proof]}


async def inclusion_proof(
    conn: AsyncConnection, index: int, tree_size: int, cache: dict[str, Any] | None = None
) -> list[bytes]:
    return await _run(conn, lambda get: merkle.inclusion_path(index, tree_size, get), cache)


def _bad_sizes(first: int, second: int, current: int) -> BadRequest:
    return BadRequest(
        f"need 0 < first <= second <= {current} (the log size); got first={first}, second={second}."
    )


async def consistency(db: Database, first: int, second: int) -> dict[str, Any]:
    _within_bigint(first=first, second=second)
    if not db.is_sqlite:  # one statement: the size and the proof's nodes
        rows = await db.pg_fetch(repository.PG_CONSISTENCY, first, second)
        current = int(rows[0]["current"])
        if not 0 < first <= second <= current:
            raise _bad_sizes(first, second, current)
        proof = merkle.consistency_path(first, second, _pg_getter(rows))
        return {"first": first, "second": second, "proof": [p.hex() for p in proof]}
    async with db.read() as conn:
        current = _count(await conn.scalar(repository.SIZE))
        if not 0 < first <= second <= current:
            raise _bad_sizes(first, second, current)
        proof = await _run(conn, lambda get: merkle.consistency_path(first, second, get), db.cache)
    return {"first": first, "second": second, "proof": [p.hex() for p in proof]}


async def proofs_for(db: Database, leaves: list[tuple[str, int]], tree_size: int) -> list[dict[str, Any]]:
    """Inclusion proofs of several (hash, index) leaves in one tree, with one node query."""

    def all_paths(get: merkle.NodeGetter) -> list[list[bytes]]:
        return [merkle.inclusion_path(i, tree_size, get) for _, i in leaves]

    async with db.read() as conn:
        paths = await _run(conn, all_paths, db.cache)
    return [
        {"leaf": h, "index": i, "proof": [p.hex() for p in path]}
        for (h, i), path in zip(leaves, paths, strict=True)
    ]


async def cosign(
    db: Database,
    unit_id: int | None,
    name: str,
    public_key: str,
    size_: int,
    root_hex: str,
    timestamp: int,
    sig: str,
) -> dict[str, Any]:
    """Record a witness's cosignature of a published tree head; the key is bound to the unit on first use."""
    from shared.crypto import BadSignature, verify

    try:
        if len(b64url_decode(public_key)) != 32:
            raise ValueError
    except ValueError:
        raise BadRequest("public_key must be a raw Ed25519 key in base64url.") from None
    async with db.write() as conn:
        unit = (
            (await conn.execute(select(units.c.kind).where(units.c.id == unit_id))).first()
            if unit_id
            else None
        )
        if unit is None or unit.kind != "one_stop_shop":
            raise PermissionDeniedException("Only a one-stop shop's clerk can witness the log.")
        head = (await conn.execute(select(tree_heads).where(tree_heads.c.size == size_))).first()
        if head is None or head.root != root_hex or head.timestamp != timestamp:
            raise NotFoundException("The server never published this tree head; fetch GET /api/v1/log/head.")
        try:
            verify(public_key, sig, head_message(size_, root_hex, timestamp))
        except BadSignature:
            raise BadRequest(
                "sig is not this key's signature of the tree head's JCS {size, root, timestamp}."
            ) from None
        w = (await conn.execute(select(witnesses).where(witnesses.c.public_key == public_key))).first()
        if w is None:
            wid = inserted_id(
                await conn.execute(
                    insert(witnesses).values(
                        unit_id=unit_id, name=name, public_key=public_key, created_at=utcnow()
                    )
                )
            )
        elif w.unit_id != unit_id:
            raise Conflict("This witness key belongs to another unit.")
        else:
            wid = w.id
        ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        await conn.execute(
            ins(cosignatures)
            .values(tree_size=size_, witness_id=wid, sig=sig, created_at=utcnow())
            .on_conflict_do_nothing()
        )
    return {"size": size_, "witness_id": wid}


async def cosignatures_of(conn: AsyncConnection, tree_size: int) -> list[dict[str, str]]:
    rows = (
        await conn.execute(
            select(witnesses.c.public_key, witnesses.c.name, cosignatures.c.sig)
            .select_from(cosignatures.join(witnesses, witnesses.c.id == cosignatures.c.witness_id))
            .where(cosignatures.c.tree_size == tree_size)
            .order_by(witnesses.c.id)
        )
    ).all()
    return [{"public_key": r.public_key, "name": r.name, "sig": r.sig} for r in rows]


async def head_for_export(
    db: Database, keys: ServerKeys, min_size: int
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The newest witnessed head covering `min_size` leaves, else the newest head."""
    current = await signed_head(db, keys)
    async with db.read() as conn:
        witnessed = (
            await conn.execute(
                select(tree_heads)
                .where(tree_heads.c.size >= min_size, tree_heads.c.size.in_(select(cosignatures.c.tree_size)))
                .order_by(tree_heads.c.size.desc())
                .limit(1)
            )
        ).first()
        head = _head_dict(witnessed) if witnessed is not None else current
        return head, await cosignatures_of(conn, head["size"])


# --- the log as static tiles and a signed checkpoint (C2SP; tiles.py) -----------------

_TILE_CACHE = "log.tiles"
_TILES_KEPT = 4096  # full tiles kept in the process (8 KiB each): 32 MiB at most
_CHECKPOINT = "log.checkpoint"


async def _read_tile(db: Database, t: tiles.Tile) -> tuple[int, bytes]:
    """(how many hashes or leaves the log has in the tile's range, their bytes)."""
    lv, a, b = tiles.tile_node_range(t)
    if t.level == tiles.ENTRIES:
        if not db.is_sqlite:
            row = (await db.pg_fetch(repository.PG_ENTRIES, a, b))[0]
            return int(row["n"]), bytes(row["body"] or b"")
        async with db.read() as conn:
            rows = (await conn.execute(repository.ENTRIES, {"a": a, "b": b})).all()
        return len(rows), tiles.entry_bundle([bytes.fromhex(r.hash) for r in rows])
    if not db.is_sqlite:  # one statement, one value: string_agg of the hashes
        row = (await db.pg_fetch(repository.PG_TILE, lv, a, b))[0]
        return int(row["n"]), bytes(row["body"] or b"")
    async with db.read() as conn:
        rows = (await conn.execute(repository.TILE, {"lv": lv, "a": a, "b": b})).all()
    return len(rows), b"".join(bytes(r.hash) for r in rows)


async def tile(db: Database, t: tiles.Tile) -> bytes:
    """The bytes of a hash tile or an entry bundle; 404 while the log has too few leaves for it."""
    kept: tiles.TileCache = db.cache.get(_TILE_CACHE) or db.cache.setdefault(
        _TILE_CACHE, tiles.TileCache(_TILES_KEPT)
    )
    if (hit := kept.get(t)) is not None:
        return hit
    found, body = await _read_tile(db, t)
    if found != t.width:
        raise NotFoundException(
            f"The log does not have this tile yet: {t.path} needs {t.width} hashes, the log has "
            f"{found} there. Read /api/v1/log/checkpoint for the tree size."
        )
    kept.put(t, body)
    return body


async def checkpoint(db: Database, keys: ServerKeys, origin: str) -> str:
    """The newest tree head as a C2SP checkpoint, signed by the log key under the name `origin`."""
    head = await signed_head(db, keys)
    cached = db.cache.get(_CHECKPOINT)
    if cached is not None and cached[0] == (head["size"], head["root"], origin):
        return cached[1]  # type: ignore[no-any-return]
    body = tiles.checkpoint_body(origin, head["size"], bytes.fromhex(head["root"]))
    note = tiles.sign_note(body, origin, keys.log)
    db.cache[_CHECKPOINT] = ((head["size"], head["root"], origin), note)
    return note
