"""The tiled Merkle tree agrees with RFC 9162 written out naively, and its proofs verify with
the standalone verifier (which shares no code with it)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra import merkle
from tests.support import standalone_verifier

standalone = standalone_verifier()


def naive_root(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + naive_root(leaves[:k]) + naive_root(leaves[k:])).digest()


def leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(n)]


def tiled(data: list[bytes], grown_in: int = 1) -> dict[tuple[int, int], bytes]:
    """Tiles as the store keeps them, grown in batches of ``grown_in`` leaves (each batch
    resumed from the stored tiles, as the integrator does)."""
    tiles: dict[tuple[int, int], bytes] = {}
    size = 0
    while size < len(data):
        last = {}
        for level in range(8):
            index = (size >> (8 * level)) // merkle.TILE_WIDTH
            if (level, index) in tiles:
                last[level] = tiles[(level, index)]
        edge = merkle.TileEdge.resume(size, last)
        for leaf in data[size : size + grown_in]:
            edge.append(merkle.leaf_hash(leaf))
        tiles.update(edge.changed)
        size = edge.size
    return tiles


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 255, 256, 257, 511, 512, 1000, 65537])
def test_the_tiled_root_equals_the_rfc_root_at_every_size_tried(size: int) -> None:
    data = leaves(size)
    node = merkle.node_from_tiles(tiled(data, grown_in=97))
    for n in {1, size // 3 or 1, size - 1 or 1, size}:
        assert merkle.root(n, node) == naive_root(data[:n])


def test_a_compact_range_gives_the_rfc_root_as_leaves_are_added() -> None:
    data = leaves(300)
    compact = merkle.CompactRange()
    assert compact.root() == naive_root([])
    for n, leaf in enumerate(data, 1):
        compact.append(merkle.leaf_hash(leaf))
        assert compact.root() == naive_root(data[:n])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3000).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_inclusion_proofs_verify_with_the_standalone_verifier(case: tuple[int, int]) -> None:
    size, index = case
    data = leaves(size)
    node = merkle.node_from_tiles(tiled(data, grown_in=500))
    proof = [merkle.range_hash(a, b, node) for a, b in merkle.inclusion_ranges(index, size)]
    root = naive_root(data)
    standalone.verify_inclusion(merkle.leaf_hash(data[index]), index, size, proof, root)
    merkle.verify_inclusion(merkle.leaf_hash(data[index]), index, size, proof, root)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3000).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))))
def test_consistency_proofs_verify_with_the_standalone_verifier(case: tuple[int, int]) -> None:
    old, new = case
    data = leaves(new)
    node = merkle.node_from_tiles(tiled(data, grown_in=700))
    proof = [merkle.range_hash(a, b, node) for a, b in merkle.consistency_ranges(old, new)]
    standalone.verify_consistency(old, new, proof, naive_root(data[:old]), naive_root(data))
    merkle.verify_consistency(old, new, proof, naive_root(data[:old]), naive_root(data))


def test_a_proof_changed_in_one_byte_does_not_verify() -> None:
    data = leaves(1000)
    node = merkle.node_from_tiles(tiled(data))
    proof = [merkle.range_hash(a, b, node) for a, b in merkle.inclusion_ranges(417, 1000)]
    proof[3] = bytes([proof[3][0] ^ 1]) + proof[3][1:]
    with pytest.raises(merkle.ProofError, match="does not lead"):
        merkle.verify_inclusion(merkle.leaf_hash(data[417]), 417, 1000, proof, naive_root(data))


def test_a_proof_needs_only_a_few_tiles_even_in_a_large_tree() -> None:
    ranges = merkle.inclusion_ranges(1_234_567, 10_000_000)
    tiles = merkle.tiles_for(merkle.nodes_needed(ranges))
    assert len(ranges) == 24
    assert len(tiles) <= 12
