"""Appends to the Merkle log's node table, inside the caller's write transaction."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, text
from sqlalchemy.sql import Select

from shared import merkle

from ..db.executor import CoreExecutor, Executor
from ..db.models import log_nodes

_ADVISORY_KEY = 0x486F536F  # "HoSo": one total order of log appends on PostgreSQL
_LOCK = select(func.pg_advisory_xact_lock(_ADVISORY_KEY))
_SIZE = select(func.max(log_nodes.c.idx)).where(log_nodes.c.level == 0)
_INSERT = insert(log_nodes)
_INSERT_KEYS = ("level", "idx", "hash")


@lru_cache(maxsize=128)
def _nodes_at(n: int) -> Select[tuple[int, int, bytes]]:
    """The nodes at n (level, idx) positions :l0/:i0 …: one statement per shape."""
    where = or_(
        *(
            and_(log_nodes.c.level == bindparam(f"l{k}"), log_nodes.c.idx == bindparam(f"i{k}"))
            for k in range(n)
        )
    )
    return select(log_nodes.c.level, log_nodes.c.idx, log_nodes.c.hash).where(where)


def append(ex: Executor, leaves: list[bytes]) -> int:
    """Append leaves (raw 32-byte event hashes); the index of the first new leaf."""
    if ex.dialect == "postgresql":
        ex.rows(_LOCK)
    (last,) = ex.rows(_SIZE)[0]
    start = 0 if last is None else int(last) + 1
    keys = sorted(merkle.right_edge(start))
    edge: dict[tuple[int, int], bytes] = {}
    if keys:
        params = {}
        for k, (level, idx) in enumerate(keys):
            params[f"l{k}"], params[f"i{k}"] = level, idx
        edge = {(lv, i): bytes(h) for lv, i, h in ex.rows(_nodes_at(len(keys)), params)}
        if len(edge) != len(keys):
            raise RuntimeError(
                f"Merkle log nodes missing from the database: {sorted(set(keys) - edge.keys())[:3]}"
            )
    created = merkle.append_nodes(start, [merkle.leaf_hash(x) for x in leaves], lambda lv, i: edge[(lv, i)])
    ex.many(_INSERT, [{"level": lv, "idx": i, "hash": h} for (lv, i), h in created.items()], _INSERT_KEYS)
    return start


# --- PostgreSQL's append in two round trips (PgIngestWriter): the lock, then the size and
# the right edge in one statement; the caller inserts the nodes with the batch's rows ---

PG_LOCK = f"SELECT pg_advisory_xact_lock({_ADVISORY_KEY})"
# the size, and the node at each set bit L of it: (L, (size >> L) - 1), merkle.right_edge;
# each node read by its primary key (a scalar subquery: the planner cannot turn it into a
# scan of the whole table, as it did with a join)
PG_SIZE_AND_EDGE = (
    "WITH s AS (SELECT coalesce(max(idx) + 1, 0) AS n FROM log_nodes WHERE level = 0) "
    "SELECT s.n, e.lv, e.hash FROM s LEFT JOIN LATERAL (SELECT b.lv, "
    "(SELECT l.hash FROM log_nodes l WHERE l.level = b.lv AND l.idx = (s.n >> b.lv) - 1) AS hash "
    "FROM generate_series(0, 62) AS b(lv) WHERE (s.n >> b.lv) & 1 = 1) e ON true"
)
# the nodes as one INSERT from three arrays: $1 levels, $2 indexes, $3 hashes
PG_INSERT_NODES = (
    "INSERT INTO log_nodes (level, idx, hash) SELECT * FROM unnest($1::int[], $2::bigint[], $3::bytea[])"
)


def pg_nodes(ex: CoreExecutor, leaves: list[bytes]) -> tuple[int, list[list[Any]]]:
    """PostgreSQL: take the log's lock for this transaction and compute the nodes that
    appending `leaves` creates; (index of the first new leaf, [levels, indexes, hashes])
    for PG_INSERT_NODES, which the caller must run in the same transaction."""
    ex.native(PG_LOCK)  # its own statement: a statement's snapshot is taken before it waits
    rows = ex.native(PG_SIZE_AND_EDGE)
    start = int(rows[0][0])
    edge = {(lv, (start >> lv) - 1): bytes(h) for _, lv, h in rows if h is not None}
    if len(edge) != start.bit_count():
        missing = sorted(set(merkle.right_edge(start)) - edge.keys())[:3]
        raise RuntimeError(f"Merkle log nodes missing from the database: {missing}")
    created = merkle.append_nodes(start, [merkle.leaf_hash(x) for x in leaves], lambda lv, i: edge[(lv, i)])
    levels, idxs, hashes = [], [], []
    for (lv, i), h in created.items():
        levels.append(lv)
        idxs.append(i)
        hashes.append(h)
    return start, [levels, idxs, hashes]


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
