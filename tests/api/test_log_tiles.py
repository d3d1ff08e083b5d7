"""The log as C2SP tiles and a signed-note checkpoint (issue 16): checked against RFC 9162's
vectors, against the JSON proof routes, and with a note verifier written here from the specs."""

from __future__ import annotations

import base64
import hashlib
import random

import nacl.exceptions
import nacl.signing
import pytest

from server.db.models import log_nodes
from server.log import tiles
from shared import merkle
from shared.crypto import b64url_decode


# --- an independent RFC 9162 §2.1 reference, straight from the definitions --------------
def _h(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def mth(d: list[bytes]) -> bytes:
    if not d:
        return _h(b"")
    if len(d) == 1:
        return _h(b"\x00" + d[0])
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return _h(b"\x01" + mth(d[:k]) + mth(d[k:]))


def mth_of_hashes(hs: list[bytes]) -> bytes:
    """MTH over already-hashed leaves (what a level-0 tile holds)."""
    if len(hs) == 1:
        return hs[0]
    k = 1 << ((len(hs) - 1).bit_length() - 1)
    return _h(b"\x01" + mth_of_hashes(hs[:k]) + mth_of_hashes(hs[k:]))


def path(m: int, hs: list[bytes]) -> list[bytes]:
    if len(hs) <= 1:
        return []
    k = 1 << ((len(hs) - 1).bit_length() - 1)
    if m < k:
        return [*path(m, hs[:k]), mth_of_hashes(hs[k:])]
    return [*path(m - k, hs[k:]), mth_of_hashes(hs[:k])]


def subproof(m: int, hs: list[bytes], b: bool) -> list[bytes]:
    n = len(hs)
    if m == n:
        return [] if b else [mth_of_hashes(hs)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*subproof(m, hs[:k], b), mth_of_hashes(hs[k:])]
    return [*subproof(m - k, hs[k:], False), mth_of_hashes(hs[:k])]


# RFC 6962 / 9162 reference inputs and roots (certificate-transparency's merkle tree tests)
RFC_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
RFC_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


# --- an independent signed-note verifier (c2sp.org/signed-note, c2sp.org/tlog-checkpoint) ---
def verify_checkpoint(note: str, name: str, public_key: bytes) -> tuple[str, int, bytes]:
    """(origin, size, root) of a checkpoint whose signature by (name, key) verifies; else ValueError."""
    assert "\r" not in note and all(c == "\n" or ord(c) >= 0x20 for c in note)
    cut = note.rindex("\n\n")
    body, sigs = note[: cut + 1], note[cut + 2 :]
    assert sigs.endswith("\n")
    want = hashlib.sha256(name.encode() + b"\x0a\x01" + public_key).digest()[:4]
    for line in sigs[:-1].split("\n"):
        assert line.startswith("\u2014 "), line
        signer, b64 = line[2:].rsplit(" ", 1)
        raw = base64.b64decode(b64, validate=True)
        if signer != name or raw[:4] != want:
            continue
        try:
            nacl.signing.VerifyKey(public_key).verify(body.encode(), raw[4:])
        except nacl.exceptions.BadSignatureError:
            raise ValueError("bad signature") from None
        lines = body[:-1].split("\n")
        assert len(lines) >= 3 and all(lines)
        return lines[0], int(lines[1]), base64.b64decode(lines[2], validate=True)
    raise ValueError("no signature by this key")


def test_rfc_vectors_through_tiles():
    """Leaf hashes of the RFC inputs laid out as stored nodes; tiles of every width give the RFC roots."""
    hashes = [merkle.leaf_hash(x) for x in RFC_LEAVES]
    nodes = merkle.append_nodes(0, hashes, lambda lv, i: b"")
    for width in range(1, len(RFC_LEAVES) + 1):
        t = tiles.parse_tile_path(f"0/000.p/{width}")
        lv, a, b = tiles.tile_node_range(t)
        body = b"".join(nodes[(lv, i)] for i in range(a, b))
        assert len(body) == 32 * width
        got = [body[i : i + 32] for i in range(0, len(body), 32)]
        assert mth_of_hashes(got).hex() == RFC_ROOTS[width - 1] == mth(RFC_LEAVES[:width]).hex()


def test_paths_and_bad_paths():
    assert tiles.encode_index(1234067) == "x001/x234/067"
    assert tiles.encode_index(0) == "000"
    assert tiles.parse_tile_path("3/x001/x234/067") == tiles.Tile(3, 1234067, 256)
    assert tiles.parse_tile_path("entries/x001/x234/067.p/8") == tiles.Tile(-1, 1234067, 8)
    assert tiles.Tile(-1, 1234067, 8).path == "tile/entries/x001/x234/067.p/8"
    for bad in ["00/000", "64/000", "0/1", "0/0001", "0/x000/001", "0/000.p/0", "0/000.p/256",
                "0/000.p/07", "0/001/x002", "x/000", "0", "0/000.p", "-1/000"]:  # fmt: skip
        with pytest.raises(tiles.BadTilePath):
            tiles.parse_tile_path(bad)


async def _keys(api):
    return (await api.call("GET", "/api/v1/keys")).json()


async def _checkpoint(api):
    r = await api.call("GET", "/api/v1/log/checkpoint")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert "max-age=5" in r.headers["cache-control"]
    keys = await _keys(api)
    name = tiles.origin_of("http://testserver")
    return verify_checkpoint(r.text, name, b64url_decode(keys["log_public_key"])), r.text


def test_tile_cache_keeps_the_most_recently_read_full_tiles():
    cache = tiles.TileCache(size=3)
    full = [tiles.Tile(0, i, tiles.TILE_WIDTH) for i in range(4)]
    for t in full[:3]:
        cache.put(t, bytes([t.index]))
    assert cache.get(full[0]) == b"\x00"  # read: now the most recent
    cache.put(full[3], b"\x03")  # drops the least recently read: tile 1
    assert len(cache) == 3 and cache.get(full[1]) is None
    assert [cache.get(t) for t in (full[0], full[2], full[3])] == [b"\x00", b"\x02", b"\x03"]
    cache.put(tiles.Tile(0, 9, 5), b"partial")  # a partial tile changes as the log grows: never kept
    assert cache.get(tiles.Tile(0, 9, 5)) is None and len(cache) == 3


async def test_checkpoint_matches_the_json_head_and_rejects_forgery(api):
    from tests.api.test_log import _journey

    await _journey(api, 1)
    (origin, size, root), note = await _checkpoint(api)
    head = (await api.call("GET", "/api/v1/log/head")).json()
    assert origin == "testserver/api/v1/log"
    assert (size, root.hex()) == (head["size"], head["root"])
    pub = b64url_decode((await _keys(api))["log_public_key"])
    forged = note.replace(f"\n{size}\n", f"\n{size + 1}\n")
    with pytest.raises(ValueError, match="bad signature"):
        verify_checkpoint(forged, origin, pub)
    with pytest.raises(ValueError, match="no signature"):
        verify_checkpoint(note, "other.example/log", pub)


async def test_tiles_and_entries_against_the_json_routes(api):
    from tests.api.test_log import _journey

    await _journey(api, 2)
    (_, size, root), _ = await _checkpoint(api)
    r = await api.call("GET", f"/api/v1/log/tile/0/000.p/{size}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert r.headers["cache-control"] == tiles.PARTIAL_CACHE
    hs = [r.content[i : i + 32] for i in range(0, len(r.content), 32)]
    assert len(hs) == size and mth_of_hashes(hs) == root
    e = await api.call("GET", f"/api/v1/log/tile/entries/000.p/{size}")
    assert e.status_code == 200
    leaves = []
    blob = e.content
    while blob:
        n = int.from_bytes(blob[:2], "big")
        leaves.append(blob[2 : 2 + n])
        blob = blob[2 + n :]
    assert [merkle.leaf_hash(x) for x in leaves] == hs  # each entry hashes to its level-0 tile hash
    for i, leaf in enumerate(leaves):
        r = await api.call("GET", "/api/v1/log/inclusion", params={"leaf": leaf.hex()})
        if r.status_code == 404:  # an enrolment record: a leaf, but not an event
            continue
        assert r.json()["index"] == i and r.json()["proof"] == [p.hex() for p in path(i, hs)]
    for first in range(1, size + 1):
        c = await api.call("GET", "/api/v1/log/consistency", params={"first": first, "second": size})
        assert c.json()["proof"] == [p.hex() for p in subproof(first, hs, True)]
    # a full tile the log does not have yet, and a partial wider than the log
    for p in ["0/000", f"0/000.p/{size + 1}", "1/000.p/1", "entries/000"]:
        r = await api.call("GET", f"/api/v1/log/tile/{p}")
        assert r.status_code == 404 and "does not have this tile yet" in r.json()["detail"]
    for p in ["0/0", "0/x000/000", "99/000", "entries/000.p/300", "0/000.p/"]:
        r = await api.call("GET", f"/api/v1/log/tile/{p}")
        assert r.status_code == 400 and "tile" in r.json()["detail"], (p, r.text)


async def test_full_and_upper_tiles_of_a_big_tree(api, db):
    """A stored tree of 3 × 256 + 5 leaves (written straight to the node table): full level-0
    tiles, the partial ones, the level-1 tile; the JSON consistency route agrees with proofs from tiles."""
    rng = random.Random(16)
    hashes = [merkle.leaf_hash(rng.randbytes(32)) for _ in range(3 * 256 + 5)]
    nodes = merkle.append_nodes(0, hashes, lambda lv, i: b"")
    async with db.write() as conn:
        await conn.execute(
            log_nodes.insert(), [{"level": lv, "idx": i, "hash": h} for (lv, i), h in nodes.items()]
        )
    n = len(hashes)
    got: list[bytes] = []
    for k in range(3):
        r = await api.call("GET", f"/api/v1/log/tile/0/{k:03d}")
        assert r.status_code == 200 and r.headers["cache-control"] == tiles.FULL_CACHE
        assert len(r.content) == 8192
        got += [r.content[i : i + 32] for i in range(0, 8192, 32)]
    r = await api.call("GET", "/api/v1/log/tile/0/003.p/5")
    got += [r.content[i : i + 32] for i in range(0, len(r.content), 32)]
    assert got == hashes
    up = await api.call("GET", "/api/v1/log/tile/1/000.p/3")
    assert up.status_code == 200
    assert [up.content[i : i + 32] for i in range(0, 96, 32)] == [
        mth_of_hashes(hashes[k * 256 : (k + 1) * 256]) for k in range(3)
    ]
    (_, size, root), _ = await _checkpoint(api)
    assert size == n and root == mth_of_hashes(hashes)
    for first in (1, 255, 256, 257, 700, n):
        c = await api.call("GET", "/api/v1/log/consistency", params={"first": first, "second": n})
        assert c.json()["proof"] == [p.hex() for p in subproof(first, hashes, True)]
    for _ in range(40):  # between older sizes too (PostgreSQL finds the nodes in SQL)
        second = rng.randrange(1, n + 1)
        first = rng.randrange(1, second + 1)
        c = await api.call("GET", "/api/v1/log/consistency", params={"first": first, "second": second})
        assert c.json()["proof"] == [p.hex() for p in subproof(first, hashes[:second], True)], (first, second)
    if not db.is_sqlite:  # the inclusion statement's nodes, at indexes this tree has no events for
        from server.log import repository
        from server.log.service import _pg_getter

        by_index = repository.PG_INCLUSION.replace(repository.PG_LEAF_INDEX, "$1::bigint")
        for _ in range(60):
            size = rng.randrange(1, n + 1)
            i = rng.randrange(size)
            rows = await db.pg_fetch(by_index, i, size)
            got_path = merkle.inclusion_path(i, size, _pg_getter(rows))
            assert got_path == path(i, hashes[:size]), (i, size)
    again = await api.call("GET", "/api/v1/log/tile/0/001")  # from the process cache now
    assert again.content == b"".join(hashes[256:512])
