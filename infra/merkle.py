"""The Merkle tree of RFC 9162 (section 2.1), over hashes kept in tiles.

Pure functions, no I/O. A tree's leaves are hashed ``SHA-256(0x00 || leaf)``, its interior
nodes ``SHA-256(0x01 || left || right)``; the root of ``n`` leaves splits them at the largest
power of two below ``n``. Every hash a proof or a root needs is the hash of a *complete*
subtree (``2**level`` leaves starting at ``index * 2**level``) or is built from a few of them,
so storage only has to answer for complete subtrees: :func:`node` reads them from tiles as
C2SP ``tlog-tiles`` lays them out (a tile at level ``L`` holds up to 256 hashes of complete
subtrees of height ``8 * L``).

The proofs are the RFC's ``PATH`` (2.1.3.1) and ``PROOF``/``SUBPROOF`` (2.1.4.1); their
verification (2.1.3.2, 2.1.4.2) is here too, for the witness and the tests, and again, written
from the RFC alone, in ``tools/verify_transparency.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
EMPTY_ROOT = hashlib.sha256(b"").digest()

Node = tuple[int, int]  # (level, index): the complete subtree of 2**level leaves at index
NodeHash = Callable[[int, int], bytes]


class ProofError(Exception):
    """A proof that does not verify, or a request no tree of that size can answer."""


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_hash(start: int, end: int, node: NodeHash) -> bytes:
    """MTH(D[start:end]) for a range the RFC's recursion produces (``start`` is a multiple of
    the largest power of two not above ``end - start``)."""
    size = end - start
    if size <= 0:
        return EMPTY_ROOT
    if size & (size - 1) == 0 and start % size == 0:
        level = size.bit_length() - 1
        return node(level, start >> level)
    k = _split(size)
    return node_hash(range_hash(start, start + k, node), range_hash(start + k, end, node))


def root(size: int, node: NodeHash) -> bytes:
    return range_hash(0, size, node)


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose hashes make the inclusion proof of leaf ``index`` in a tree of
    ``size`` leaves, in the proof's order (RFC 9162, 2.1.3.1)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The ranges whose hashes make the consistency proof from a tree of ``old`` leaves to
    one of ``new`` (RFC 9162, 2.1.4.1)."""
    if not 0 <= old <= new:
        raise ProofError(f"a tree of {new} leaves cannot extend one of {old}")
    if old in (0, new):
        return []
    ranges: list[tuple[int, int]] = []

    def subproof(m: int, start: int, end: int, complete: bool) -> None:
        n = end - start
        if m == n:
            if not complete:
                ranges.append((start, end))
            return
        k = _split(n)
        if m <= k:
            subproof(m, start, start + k, complete)
            ranges.append((start + k, end))
        else:
            subproof(m - k, start + k, end, False)
            ranges.append((start, start + k))

    subproof(old, 0, new, True)
    return ranges


def nodes_needed(ranges: Iterable[tuple[int, int]]) -> set[Node]:
    """Which complete subtrees the hashes of ``ranges`` are built from."""
    needed: set[Node] = set()

    def record(level: int, index: int) -> bytes:
        needed.add((level, index))
        return EMPTY_ROOT

    for start, end in ranges:
        range_hash(start, end, record)
    return needed


# --- tiles -----------------------------------------------------------------------------------


def tiles_for(nodes: Iterable[Node]) -> set[tuple[int, int]]:
    """The tiles (tile level, tile index) that hold what the complete subtrees are built from."""
    found: set[tuple[int, int]] = set()
    for level, index in nodes:
        tile_level, rest = divmod(level, TILE_HEIGHT)
        first = index << rest
        found.add((tile_level, first // TILE_WIDTH))
    return found


def node_from_tiles(tiles: dict[tuple[int, int], bytes]) -> NodeHash:
    """A :data:`NodeHash` reading tiles: ``tiles[(level, index)]`` is the concatenation of the
    tile's hashes (a partial tile may be shorter than 256)."""

    def node(level: int, index: int) -> bytes:
        tile_level, rest = divmod(level, TILE_HEIGHT)
        first = index << rest
        tile = tiles.get((tile_level, first // TILE_WIDTH))
        offset = first % TILE_WIDTH
        count = 1 << rest
        if tile is None or len(tile) < (offset + count) * 32:
            raise ProofError(f"the tree does not hold the subtree ({level}, {index}) yet")
        hashes = [tile[i * 32 : (i + 1) * 32] for i in range(offset, offset + count)]
        return complete_root(hashes)

    return node


def complete_root(hashes: list[bytes]) -> bytes:
    """The root over a power-of-two number of sibling hashes."""
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


@dataclass
class TileEdge:
    """The right edge of a tiled tree: the last tile of every level, as appending leaf hashes
    grows it. ``changed`` names the tiles to store, with their hashes so far; a tile of 256
    hashes is full, and its root becomes the next hash of the tile one level up."""

    size: int = 0
    tiles: list[bytearray] = field(default_factory=list)  # the last tile of each level
    changed: dict[tuple[int, int], bytes] = field(default_factory=dict)

    @classmethod
    def resume(cls, size: int, last_tiles: dict[int, bytes]) -> TileEdge:
        """Continue from a stored tree of ``size`` leaves: ``last_tiles[level]`` is the stored
        tile at that level holding the tree's right edge (absent when it has no hash yet)."""
        edge = cls(size)
        count, level = size, 0
        while count:
            held = count % TILE_WIDTH
            edge.tiles.append(bytearray(last_tiles.get(level, b"")[: held * 32]))
            if len(edge.tiles[-1]) != held * 32:
                raise ProofError(f"the stored tile at level {level} is shorter than the tree")
            count //= TILE_WIDTH
            level += 1
        return edge

    def append(self, leaf_hash_: bytes) -> None:
        self._push(0, leaf_hash_, self.size)
        self.size += 1

    def _push(self, level: int, digest: bytes, position: int) -> None:
        """Put ``digest``, the ``position``-th hash of tile level ``level``, in its tile."""
        if len(self.tiles) == level:
            self.tiles.append(bytearray())
        tile = self.tiles[level]
        tile += digest
        index = position // TILE_WIDTH
        self.changed[(level, index)] = bytes(tile)
        if len(tile) == TILE_WIDTH * 32:
            full = [bytes(tile[i * 32 : (i + 1) * 32]) for i in range(TILE_WIDTH)]
            self.tiles[level] = bytearray()
            self._push(level + 1, complete_root(full), index)


# --- verification (RFC 9162, 2.1.3.2 and 2.1.4.2) ---------------------------------------------


def verify_inclusion(
    leaf_hash_: bytes, index: int, size: int, proof: list[bytes], root_: bytes
) -> None:
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is outside a tree of {size} leaves")
    fn, sn, r = index, size - 1, leaf_hash_
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is deep")
    if r != root_:
        raise ProofError("the inclusion proof does not lead to the checkpoint's root hash")


def verify_consistency(
    old: int, new: int, proof: list[bytes], old_root: bytes, new_root: bytes
) -> None:
    if not 0 <= old <= new:
        raise ProofError(f"a tree of {new} leaves cannot extend one of {old}")
    if old == new:
        if proof or old_root != new_root:
            raise ProofError("two trees of the same size with different root hashes")
        return
    if old == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the trees are deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the trees are deep")
    if fr != old_root:
        raise ProofError("the consistency proof does not lead to the older root hash")
    if sr != new_root:
        raise ProofError("the consistency proof does not lead to the newer root hash")


@dataclass
class CompactRange:
    """The root of a growing tree in O(log n) memory: the hashes of the complete subtrees
    along its right edge (used when the whole log is walked, and a checkpoint's root hash is
    recomputed from the events alone)."""

    size: int = 0
    peaks: list[bytes] = field(default_factory=list)  # largest first

    def append(self, leaf_hash_: bytes) -> None:
        digest, size = leaf_hash_, self.size
        while size & 1:
            digest = node_hash(self.peaks.pop(), digest)
            size >>= 1
        self.peaks.append(digest)
        self.size += 1

    def root(self) -> bytes:
        if not self.peaks:
            return EMPTY_ROOT
        digest = self.peaks[-1]
        for peak in reversed(self.peaks[:-1]):
            digest = node_hash(peak, digest)
        return digest
