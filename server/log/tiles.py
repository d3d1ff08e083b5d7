"""C2SP tlog-tiles paths and the C2SP checkpoint as a signed note (pure functions).

- tlog-tiles (https://c2sp.org/tlog-tiles): `tile/<L>/<N>[.p/<W>]`, 256 hashes a tile; the
  hashes of a tile at level L are the Merkle roots of 256**L consecutive leaves, so they are
  exactly the stored log nodes at tree level 8*L. `tile/entries/<N>[.p/<W>]`: the leaves
  themselves (each the 32 raw bytes of an event or enrolment hash), uint16 length-prefixed.
- tlog-checkpoint (https://c2sp.org/tlog-checkpoint): `origin\\nsize\\nbase64(root)\\n`.
- signed-note (https://c2sp.org/signed-note): body, a blank line, then
  `— <key name> base64(key hash ‖ Ed25519 signature of the body)`; key hash = the first
  4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass

from shared.crypto import SigningKey

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # 256 hashes, 8,192 bytes
MAX_LEVEL = 63
ENTRIES = -1  # the level of an entry bundle
ED25519 = 0x01
FULL_CACHE = "public, max-age=31536000, immutable"
PARTIAL_CACHE = "public, max-age=60"
CHECKPOINT_CACHE = "public, max-age=5"

_LEVEL = re.compile(r"0|[1-9][0-9]?")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")
_X = re.compile(r"x[0-9]{3}")
_LAST = re.compile(r"[0-9]{3}")


class BadTilePath(ValueError):
    """A path that names no tile; the message says why."""


@dataclass(frozen=True, slots=True)
class Tile:
    level: int  # ENTRIES (-1) for an entry bundle
    index: int
    width: int  # TILE_WIDTH for a full tile

    @property
    def full(self) -> bool:
        return self.width == TILE_WIDTH

    @property
    def path(self) -> str:
        lv = "entries" if self.level == ENTRIES else str(self.level)
        p = "" if self.full else f".p/{self.width}"
        return f"tile/{lv}/{encode_index(self.index)}{p}"


def encode_index(n: int) -> str:
    """1234067 -> x001/x234/067 (zero-padded 3-digit elements, all but the last with x)."""
    if n < 0:
        raise ValueError("a tile index is not negative")
    parts = []
    while True:
        parts.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    parts.reverse()
    return "/".join([*("x" + p for p in parts[:-1]), parts[-1]])


def parse_tile_path(rest: str) -> Tile:
    """`<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]` (the part after `tile/`), canonical forms only."""
    parts = rest.split("/")
    if len(parts) < 2:
        raise BadTilePath("A tile path is tile/<L>/<N>[.p/<W>], e.g. tile/0/x001/234 or tile/0/007.p/9.")
    head, elems = parts[0], parts[1:]
    if head == "entries":
        level = ENTRIES
    elif _LEVEL.fullmatch(head) and int(head) <= MAX_LEVEL:
        level = int(head)
    else:
        raise BadTilePath(
            f"The tile level must be 0 to 63 or 'entries' without leading zeroes, not {head!r}."
        )
    width = TILE_WIDTH
    if len(elems) >= 2 and elems[-2].endswith(".p"):
        w = elems[-1]
        if not _WIDTH.fullmatch(w) or int(w) >= TILE_WIDTH:
            raise BadTilePath(f"A partial tile's width is 1 to 255 without leading zeroes, not {w!r}.")
        width = int(w)
        elems = [*elems[:-2], elems[-2][:-2]]
    if not _LAST.fullmatch(elems[-1]) or not all(_X.fullmatch(e) for e in elems[:-1]):
        raise BadTilePath(
            "The tile index is written in 3-digit elements, all but the last starting with x "
            "(1234067 is x001/x234/067)."
        )
    if len(elems) > 1 and elems[0] == "x000":
        raise BadTilePath("The tile index has a leading x000 element; write it without.")
    index = int("".join(e.lstrip("x") for e in elems))
    if index >= MAX_INDEX:
        raise BadTilePath(
            f"The tile index is too large: a log holds fewer than 2^63 leaves, so its tiles are "
            f"numbered below {MAX_INDEX:,} (2^55); read /api/v1/log/checkpoint for the tree size."
        )
    return Tile(level, index, width)


# a log holds at most 2^63 - 1 leaves (indexes are bigints), so every tile's first node is
# below 2^63 / 256: the tiles are numbered below 2^55
MAX_INDEX = 1 << (63 - TILE_HEIGHT)


class TileCache:
    """Full tiles kept in the process, the least recently read dropped first. A full tile
    never changes (the log only appends), so a kept one is never stale; partial tiles are
    not kept."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._kept: OrderedDict[Tile, bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, tile: Tile) -> bytes | None:
        body = self._kept.get(tile)
        if body is not None:
            self._kept.move_to_end(tile)
        return body

    def put(self, tile: Tile, body: bytes) -> None:
        if not tile.full:
            return
        self._kept[tile] = body
        self._kept.move_to_end(tile)
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)


def tile_node_range(tile: Tile) -> tuple[int, int, int]:
    """(tree level, first node index, end) of the log nodes a hash tile holds (or of the
    leaves an entry bundle holds); the end at most 2^63 - 1, a bigint (the last full tile
    numbered 2^55 - 1 would end at 2^63, and no log has it)."""
    first = tile.index * TILE_WIDTH
    level = max(tile.level, 0) * TILE_HEIGHT
    return level, first, min(first + tile.width, (1 << 63) - 1)


def entry_bundle(leaves: list[bytes]) -> bytes:
    return b"".join(len(x).to_bytes(2, "big") + x for x in leaves)


def key_hash(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


def verifier_key(name: str, public_key: bytes) -> str:
    """The note verifier key string `<name>+<hex key hash>+<base64(0x01 ‖ key)>`."""
    b64 = base64.b64encode(bytes([ED25519]) + public_key).decode()
    return f"{name}+{key_hash(name, public_key).hex()}+{b64}"


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def sign_note(body: str, name: str, key: SigningKey) -> str:
    if not body.endswith("\n") or "\n\n" in body:
        raise ValueError("a note body ends in one newline and holds no blank line")
    sig = key.sign(body.encode())
    line = base64.b64encode(key_hash(name, key.public_key) + sig).decode()
    return f"{body}\n\u2014 {name} {line}\n"


def origin_of(base_url: str) -> str:
    """The checkpoint origin (and log key name): the log's URL prefix without its scheme."""
    rest = base_url.split("://", 1)[-1].rstrip("/")
    return f"{rest}/api/v1/log"
