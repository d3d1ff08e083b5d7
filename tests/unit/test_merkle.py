"""RFC 6962 / 9162 proofs: the public conformance vectors, and our own generator."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import merkle

VECTORS = Path(__file__).resolve().parents[1] / "data" / "merkle"


def _b64(x):
    return base64.b64decode(x) if x is not None else b""


def _cases(kind: str):
    files = sorted((VECTORS / kind).rglob("*.json"))
    assert files, f"no {kind} vectors under {VECTORS}"
    return [pytest.param(json.loads(f.read_text()), id=str(f.relative_to(VECTORS))) for f in files]


@pytest.mark.parametrize("case", _cases("inclusion"))
def test_inclusion_vectors(case):
    args = (
        _b64(case["leafHash"]),
        case["leafIdx"],
        case["treeSize"],
        [_b64(p) for p in case["proof"] or []],
        _b64(case["root"]),
    )
    if case["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize("case", _cases("consistency"))
def test_consistency_vectors(case):
    args = (
        case["size1"],
        case["size2"],
        [_b64(p) for p in case["proof"] or []],
        _b64(case["root1"]),
        _b64(case["root2"]),
    )
    if case["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def test_vector_count():
    assert len(_cases("inclusion")) > 50 and len(_cases("consistency")) > 50


class Store:
    """Perfect-subtree nodes, kept the way the server keeps them."""

    def __init__(self):
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.size = 0

    def append(self, leaves):
        self.nodes.update(
            merkle.append_nodes(
                self.size, [merkle.leaf_hash(x) for x in leaves], lambda lv, i: self.nodes[(lv, i)]
            )
        )
        self.size += len(leaves)

    def get(self, level, index):
        return self.nodes[(level, index)]


def _flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[bit // 8 % 32] ^= 1 << (bit % 8)
    return bytes(b)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=70), st.data())
def test_random_logs_prove_and_flipped_bits_fail(leaves, data):
    store = Store()
    cut = data.draw(st.integers(min_value=0, max_value=len(leaves)))
    store.append(leaves[:cut])
    store.append(leaves[cut:])
    size = len(leaves)
    hashes = [merkle.leaf_hash(x) for x in leaves]
    root = merkle.root_of(hashes)
    assert merkle.tree_root(size, store.get) == root
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = merkle.inclusion_path(index, size, store.get)
    merkle.verify_inclusion(hashes[index], index, size, proof, root)
    bit = data.draw(st.integers(min_value=0, max_value=255))
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(_flip(hashes[index], bit), index, size, proof, root)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(hashes[index], index, size, proof, _flip(root, bit))
    if proof:
        k = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        bad = [*proof[:k], _flip(proof[k], bit), *proof[k + 1 :]]
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(hashes[index], index, size, bad, root)
    first = data.draw(st.integers(min_value=1, max_value=size))
    old_root = merkle.root_of(hashes[:first])
    cproof = merkle.consistency_path(first, size, store.get)
    merkle.verify_consistency(first, size, cproof, old_root, root)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(first, size, cproof, _flip(old_root, bit), root)
    if cproof:
        k = data.draw(st.integers(min_value=0, max_value=len(cproof) - 1))
        bad = [*cproof[:k], _flip(cproof[k], bit), *cproof[k + 1 :]]
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(first, size, bad, old_root, root)


def test_proofs_read_logarithmically_many_nodes():
    store = Store()
    rng = random.Random(7)
    store.append([rng.randbytes(32) for _ in range(5000)])
    for index in (0, 1234, 4999):
        wanted = merkle.needed_nodes(lambda get, i=index: merkle.inclusion_path(i, 5000, get))
        assert len(wanted) <= 2 * 13
    wanted = merkle.needed_nodes(lambda get: merkle.consistency_path(777, 5000, get))
    assert len(wanted) <= 2 * 13
    assert set(merkle.right_edge(5000)) == merkle.needed_nodes(lambda get: merkle.tree_root(5000, get))
