"""RFC 9162 §2.1 Merkle trees: hashing, proof generation over stored subtrees, verification.

Leaves are the 32 raw bytes of event hashes; leaf hash = SHA-256(0x00‖leaf),
node hash = SHA-256(0x01‖left‖right). Proof generation is written against a
`get(level, index)` that returns the root of a perfect, aligned subtree of 2**level
leaves, so a server can keep just those nodes and answer any proof in O(log n) reads:
`needed_nodes` lists them first, the caller fetches them in one query.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

HASH_SIZE = 32
NodeGetter = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof that does not verify, or arguments that cannot have one."""


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_hashes: list[bytes]) -> bytes:
    """MTH of a list of leaf hashes (in memory; for tests and small trees)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


# --- generation over perfect subtrees -------------------------------------------------


def subtree_root(start: int, end: int, get: NodeGetter) -> bytes:
    """MTH(D[start:end]) from perfect aligned subtrees (RFC 9162 splits keep them aligned)."""
    size = end - start
    if size <= 0:
        raise ProofError("empty range")
    if size & (size - 1) == 0 and start % size == 0:
        level = size.bit_length() - 1
        return get(level, start >> level)
    k = _largest_power_of_two_below(size)
    return node_hash(subtree_root(start, start + k, get), subtree_root(start + k, end, get))


def tree_root(size: int, get: NodeGetter) -> bytes:
    return EMPTY_ROOT if size == 0 else subtree_root(0, size, get)


def inclusion_path(index: int, size: int, get: NodeGetter) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, leaf's sibling first."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")

    def path(m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _largest_power_of_two_below(n)
        if m < k:
            return [*path(m, start, start + k), subtree_root(start + k, end, get)]
        return [*path(m - k, start + k, end), subtree_root(start, start + k, get)]

    return path(index, 0, size)


def consistency_path(first: int, second: int, get: NodeGetter) -> list[bytes]:
    """PROOF(first, D[0:second]) of RFC 9162 §2.1.4.1."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")

    def sub(m: int, start: int, end: int, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [subtree_root(start, end, get)]
        k = _largest_power_of_two_below(n)
        if m <= k:
            return [*sub(m, start, start + k, complete), subtree_root(start + k, end, get)]
        return [*sub(m - k, start + k, end, False), subtree_root(start, start + k, get)]

    return sub(first, 0, second, True)


def needed_nodes(run: Callable[[NodeGetter], object]) -> set[tuple[int, int]]:
    """The (level, index) nodes that `run(get)` asks for, found by a dry run."""
    wanted: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return b"\x00" * HASH_SIZE

    run(record)
    return wanted


def right_edge(size: int) -> list[tuple[int, int]]:
    """The perfect subtrees whose roots a tree of `size` leaves ends with (its compact range)."""
    out = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            out.append((level, start >> level))
            start += 1 << level
    return out


def append_nodes(
    size: int, new_leaf_hashes: Iterable[bytes], get: NodeGetter
) -> dict[tuple[int, int], bytes]:
    """Every perfect-subtree node created by appending leaves to a tree of `size` leaves.

    `get` needs to answer only for the current right edge (`right_edge(size)`).
    """
    created: dict[tuple[int, int], bytes] = {}

    def node(level: int, index: int) -> bytes:
        return created[(level, index)] if (level, index) in created else get(level, index)

    for i, h in enumerate(new_leaf_hashes, start=size):
        created[(0, i)] = h
        level, index = 0, i
        while index & 1:  # a right child completes its parent
            parent = node_hash(node(level, index - 1), node(level, index))
            level, index = level + 1, index >> 1
            created[(level, index)] = parent
    return created


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ------------------------------------


def _check_hashes(*hashes: bytes) -> None:
    for h in hashes:
        if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
            raise ProofError("hashes must be 32 bytes")


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> None:
    """Raise ProofError unless `proof` shows leaf hash `leaf` at `index` in the tree `root` of `size`."""
    _check_hashes(leaf, root, *proof)
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    if r != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(
    first: int, second: int, proof: list[bytes], first_root: bytes, second_root: bytes
) -> None:
    """Raise ProofError unless `proof` shows the tree of `second` leaves extends the one of `first`."""
    if first == 0:
        raise ProofError("a consistency proof from an empty tree proves nothing")
    if first > second:
        raise ProofError(f"size {first} is larger than size {second}")
    if first == second:
        if proof:
            raise ProofError("equal sizes need an empty proof")
        if first_root != second_root:
            raise ProofError("equal sizes but different roots")
        return
    _check_hashes(first_root, second_root, *proof)
    if not proof:
        raise ProofError("empty consistency proof")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != first_root:
        raise ProofError("consistency proof does not lead to the first root")
    if sr != second_root:
        raise ProofError("consistency proof does not lead to the second root")
