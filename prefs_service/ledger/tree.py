"""RFC 9162 Merkle tree arithmetic, with no database: hashes, the stack
frontier, node keys, and the shapes of inclusion and consistency proofs.

Hashes: leaf = SHA-256(0x00 || leaf bytes), node = SHA-256(0x01 || left || right);
the tree of n leaves splits at the largest power of two below n (RFC 9162 §2.1.1).
The empty tree's root is SHA-256 of nothing.

Only perfect subtrees are stored (ledger_nodes), keyed by node_key(level, index):
the subtree of 2**level leaves starting at leaf index * 2**level. The key sorts
nodes in the order an appending tree completes them, so `prefs ledger verify`
compares them in one ordered scan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256


def leaf_hash(leaf: bytes) -> bytes:
    return _sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def node_key(level: int, index: int) -> int:
    """The stored key of a perfect subtree: (leaf count at which it completes) * 64 + level."""
    return (((index + 1) << level) << 6) | level


def perfect_parts(start: int, end: int) -> Iterator[tuple[int, int]]:
    """The perfect subtrees (level, index) that make up leaves [start, end) as
    RFC 9162 splits them, left to right (start is a multiple of the first part)."""
    while start < end:
        size = end - start
        level = size.bit_length() - 1
        while start & ((1 << level) - 1):  # pragma: no cover - RFC ranges are always aligned
            level -= 1
        yield level, start >> level
        start += 1 << level


def fold(hashes: list[bytes]) -> bytes:
    """The root of consecutive perfect subtrees of decreasing size (a frontier)."""
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


class Frontier:
    """The right edge of an append-only tree: one hash per perfect subtree."""

    __slots__ = ("size", "stack")

    def __init__(self, size: int = 0, stack: list[bytes] | None = None):
        self.size = size
        self.stack = stack if stack is not None else []

    def append(self, leaf_digest: bytes) -> list[tuple[int, bytes]]:
        """Add one leaf hash; the (node key, hash) of every subtree it completes, leaf first."""
        index = self.size
        stack = self.stack
        stack.append(leaf_digest)
        made = [(node_key(0, index), leaf_digest)]
        size = index + 1
        level = 0
        while not size & (1 << level):
            right = stack.pop()
            merged = node_hash(stack.pop(), right)
            stack.append(merged)
            level += 1
            made.append((node_key(level, (size >> level) - 1), merged))
        self.size = size
        return made

    def root(self) -> bytes:
        return fold(self.stack)


def frontier_keys(size: int) -> list[int]:
    """The node keys of the perfect subtrees on the right edge of a tree of `size` leaves."""
    return [node_key(level, index) for level, index in perfect_parts(0, size)]


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.3.1 PATH(index, D[0:size]): the leaf ranges whose hashes form
    the proof, from the leaf upwards."""
    ranges: list[tuple[int, int]] = []
    start, end, m = 0, size, index
    while end - start > 1:
        k = 1 << ((end - start - 1).bit_length() - 1)
        if m < k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
    ranges.reverse()
    return ranges


def consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.4.1 PROOF(old, D[0:new]) as leaf ranges, in proof order."""
    ranges: list[tuple[int, int]] = []
    start, end, m, whole = 0, new, old, True
    while m != end - start:
        k = 1 << ((end - start - 1).bit_length() - 1)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            whole = False
    if not whole:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def range_hashes(ranges: list[tuple[int, int]], lookup: Callable[[list[int]], dict[int, bytes]]) -> list[bytes]:
    """The hash of each leaf range, from the stored perfect subtrees `lookup`
    returns ({node key: hash}) for the keys asked."""
    parts = [list(perfect_parts(start, end)) for start, end in ranges]
    found = lookup(sorted({node_key(level, index) for part in parts for level, index in part}))
    return [fold([found[node_key(level, index)] for level, index in part]) for part in parts]
