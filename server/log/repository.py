"""Appends to the Merkle log's node table, inside the caller's write transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select, text, update

from shared import merkle

from ..db.executor import Executor
from ..db.models import log_head, log_nodes

# The log's size and right edge live in one row, log_head (models.py), that every append
# reads and rewrites: on PostgreSQL its row lock gives appends one total order; on SQLite
# the single writer already does.
_HEAD = select(log_head.c.size, log_head.c.edge).where(log_head.c.id == 1).with_for_update()
_SET_HEAD = update(log_head).where(log_head.c.id == bindparam("b_id"))
_SET_HEAD_KEYS = ("size", "edge")
_INSERT = insert(log_nodes)
_INSERT_KEYS = ("level", "idx", "hash")


@dataclass(frozen=True, slots=True)
class Appended:
    """What appending leaves to a log of `start` leaves creates: the nodes, and the new head."""

    start: int
    nodes: dict[tuple[int, int], bytes]
    size: int
    edge: bytes


def edge_nodes(size: int, edge: bytes) -> dict[tuple[int, int], bytes]:
    """log_head.edge as the nodes it holds, by (level, idx)."""
    keys = merkle.right_edge(size)
    if len(edge) != 32 * len(keys):
        raise RuntimeError(
            f"log_head's edge has {len(edge)} bytes; a log of {size} leaves needs {32 * len(keys)}"
        )
    return {key: edge[32 * k : 32 * k + 32] for k, key in enumerate(keys)}


def appended(size: int, edge: bytes, leaves: list[bytes]) -> Appended:
    """The nodes and the head after appending leaves (raw 32-byte event hashes) to a log
    of `size` leaves whose right edge is `edge` (log_head's row)."""
    old = edge_nodes(size, bytes(edge))
    created = merkle.append_nodes(size, [merkle.leaf_hash(x) for x in leaves], lambda lv, i: old[(lv, i)])
    new_size = size + len(leaves)
    new_edge = b"".join(created.get(key) or old[key] for key in merkle.right_edge(new_size))
    return Appended(size, created, new_size, new_edge)


def append(ex: Executor, leaves: list[bytes]) -> int:
    """Append leaves (raw 32-byte event hashes); the index of the first new leaf."""
    size, edge = ex.rows(_HEAD)[0]  # locked until the transaction ends (PostgreSQL)
    done = appended(int(size), edge, leaves)
    ex.many(_INSERT, [{"level": lv, "idx": i, "hash": h} for (lv, i), h in done.nodes.items()], _INSERT_KEYS)
    ex.many(_SET_HEAD, [{"size": done.size, "edge": done.edge, "b_id": 1}], _SET_HEAD_KEYS)
    return done.start


# --- PostgreSQL's append inside ingest's one write statement (PgIngestWriter): the head is
# guessed (read without a lock with the shipments' row lock), and the statement itself
# checks the guess (PG_SET_HEAD); on a miss the caller locks the head (PG_LOCK_HEAD) and
# writes again ---

PG_LOCK_HEAD = "SELECT size, edge FROM log_head WHERE id = 1 FOR UPDATE"
# $1 the size guessed, $2 the new size, $3 the new edge: one row when the guess was right
# (and the row is then locked until the transaction ends), none when another append came first
PG_SET_HEAD = "UPDATE log_head SET size = $2, edge = $3 WHERE id = 1 AND size = $1 RETURNING size"
# the nodes as one INSERT from three arrays: levels, indexes, hashes (their parameters' numbers)
PG_INSERT_NODES = (
    "INSERT INTO log_nodes (level, idx, hash) SELECT * FROM unnest(${}::int[], ${}::bigint[], ${}::bytea[])"
)


def pg_node_arrays(done: Appended) -> list[list[Any]]:
    """The created nodes as PG_INSERT_NODES's three arrays."""
    levels, idxs, hashes = [], [], []
    for (lv, i), h in done.nodes.items():
        levels.append(lv)
        idxs.append(i)
        hashes.append(h)
    return [levels, idxs, hashes]


# --- reads for the hot routes (issue 16): plain SQL text, built once, one statement each ---

SIZE_AND_HEAD = text(
    "SELECT (SELECT max(idx) FROM log_nodes WHERE level = 0) AS last, size, root, timestamp, sig "
    "FROM tree_heads ORDER BY size DESC LIMIT 1"
)
SIZE = text("SELECT max(idx) FROM log_nodes WHERE level = 0")
INDEX_AND_SIZE = text(
    "SELECT (SELECT log_index FROM custody_events WHERE hash = :h) AS idx, "
    "(SELECT max(idx) FROM log_nodes WHERE level = 0) AS last"
)
TILE = text("SELECT hash FROM log_nodes WHERE level = :lv AND idx >= :a AND idx < :b ORDER BY idx")
# the log's leaves are the hashes of accepted events and of device enrolment records
ENTRIES = text(
    "SELECT log_index, hash FROM custody_events WHERE log_index >= :a AND log_index < :b "
    "UNION ALL "
    "SELECT log_index, hash FROM device_enrolments WHERE log_index >= :a AND log_index < :b "
    "ORDER BY 1"
)

# --- the same reads on PostgreSQL through Database.pg_fetch (asyncpg's text, $1 …): one
# statement a route. A proof's nodes are found in SQL from the sizes and the leaf index:
# a superset of what merkle.inclusion_path / consistency_path ask for (the caller runs those
# over the rows), each node read by its primary key in a scalar subquery ---

# the perfect subtrees a tree of n leaves ends with (merkle.right_edge: the node at each set
# bit lv of n), which make up any subtree_root(x, n) a proof asks for
_PG_RIGHT_EDGE = (
    "SELECT b.lv, (s.n >> b.lv) - 1 FROM generate_series(0, 62) AS b(lv) WHERE (s.n >> b.lv) & 1 = 1"
)
_PG_NODE = "(SELECT l.hash FROM log_nodes l WHERE l.level = k.lv AND l.idx = k.idx) AS hash"
_PG_CURRENT = "(SELECT coalesce(max(idx) + 1, 0) FROM log_nodes WHERE level = 0)"

# the newest signed head and the log's size: always one row (no head yet: NULLs)
PG_HEAD = (
    f"SELECT {_PG_CURRENT} AS current, h.size, h.root, h.timestamp, h.sig FROM (SELECT 1) AS one "
    "LEFT JOIN LATERAL (SELECT size, root, timestamp, sig FROM tree_heads "
    "ORDER BY size DESC LIMIT 1) h ON true"
)
# $1 leaf (hex), $2 tree size or NULL (the current): the leaf's index i, the log's size, the
# size n, and the nodes: the sibling of each ancestor of leaf i that lies wholly inside n,
# and n's right edge (the one sibling that reaches past n is made of those)
PG_LEAF_INDEX = "(SELECT log_index FROM custody_events WHERE hash = $1)"
PG_INCLUSION = (
    f"WITH f AS (SELECT {PG_LEAF_INDEX} AS i, "
    f"{_PG_CURRENT} AS current), "
    "s AS (SELECT i, current, coalesce($2::bigint, current) AS n FROM f) "
    f"SELECT s.i, s.current, s.n, k.lv, k.idx, {_PG_NODE} FROM s LEFT JOIN LATERAL ("
    "SELECT b.lv, (s.i >> b.lv) # 1 AS idx FROM generate_series(0, 62) AS b(lv) "
    "WHERE ((s.i >> b.lv) # 1) < (s.n >> b.lv) "
    f"UNION ALL {_PG_RIGHT_EDGE}) k ON s.i IS NOT NULL AND s.i < s.n AND s.n <= s.current"
)
# $1 first, $2 second: the log's size, and the nodes: each ancestor of leaf first - 1 and
# its sibling, where wholly inside second, and second's right edge
PG_CONSISTENCY = (
    f"WITH s AS (SELECT {_PG_CURRENT} AS current, $1::bigint AS m, $2::bigint AS n) "
    f"SELECT s.current, k.lv, k.idx, {_PG_NODE} FROM s LEFT JOIN LATERAL ("
    "SELECT b.lv, ((s.m - 1) >> b.lv) # x.d AS idx FROM generate_series(0, 62) AS b(lv), "
    "(VALUES (0::bigint), (1::bigint)) AS x(d) WHERE (((s.m - 1) >> b.lv) # x.d) < (s.n >> b.lv) "
    f"UNION ALL {_PG_RIGHT_EDGE}) k ON 0 < s.m AND s.m <= s.n AND s.n <= s.current"
)
# a hash tile as one value: $1 tree level, nodes [$2, $3)
PG_TILE = (
    "SELECT count(*) AS n, string_agg(hash, ''::bytea ORDER BY idx) AS body FROM log_nodes "
    "WHERE level = $1 AND idx >= $2 AND idx < $3"
)
# an entry bundle as one value: the leaves [$1, $2), each uint16 length-prefixed
PG_ENTRIES = (
    "SELECT count(*) AS n, string_agg(int2send(length(h)::int2) || h, ''::bytea ORDER BY i) AS body FROM ("
    "SELECT log_index AS i, decode(hash, 'hex') AS h FROM custody_events "
    "WHERE log_index >= $1 AND log_index < $2 "
    "UNION ALL "
    "SELECT log_index, decode(hash, 'hex') FROM device_enrolments WHERE log_index >= $1 AND log_index < $2) e"
)
