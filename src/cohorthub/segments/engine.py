"""The bitmap engine: a whole filter tree as roaring-bitmap algebra over `users.num`.

The universe is the workspace's users; every leaf is a bitmap within it (from the
maintained indexes in `indexes.py`). `and` intersects its positive children and subtracts
its negated ones, `or` unions, `not` is the universe minus the child. The answer never
aliases a cached bitmap, so callers may keep or change it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from pyroaring import BitMap

from cohorthub.segments.errors import SegmentCycle
from cohorthub.segments.model import And, Leaf, Node, Not, Or, SegmentLeaf


class LeafSource(Protocol):
    """Where the engine gets the universe and each leaf's members (bitmaps it must not change)."""

    def universe(self) -> BitMap: ...
    def leaf(self, leaf: Leaf) -> BitMap: ...


def evaluate(node: Node, *, source: LeafSource, definitions: Mapping[str, Node]) -> BitMap:
    """The members of `node` as a fresh bitmap."""
    result = _Evaluation(source, definitions).run(node, ())
    return result & source.universe()


class _Evaluation:
    def __init__(self, source: LeafSource, definitions: Mapping[str, Node]) -> None:
        self.source = source
        self.definitions = definitions
        self.segments: dict[str, BitMap] = {}

    def run(self, node: Node, stack: tuple[str, ...]) -> BitMap:
        if isinstance(node, And):
            return self._and(node, stack)
        if isinstance(node, Or):
            out = BitMap()
            for child in node.children:
                out |= self.run(child, stack)
            return out
        if isinstance(node, Not):
            return self.source.universe() - self.run(node.child, stack)
        if isinstance(node, SegmentLeaf):
            inside = self._segment(node.segment_id, stack)
            return inside if node.op == "includes" else self.source.universe() - inside
        return self.source.leaf(node)

    def _and(self, node: And, stack: tuple[str, ...]) -> BitMap:
        positives = [self.run(c, stack) for c in node.children if not isinstance(c, Not)]
        negatives = [self.run(c.child, stack) for c in node.children if isinstance(c, Not)]
        if not positives:
            positives = [self.source.universe()]
        positives.sort(key=len)
        out = positives[0] & positives[1] if len(positives) > 1 else positives[0].copy()
        for other in positives[2:]:
            out &= other
        for other in negatives:
            out -= other
        return out

    def _segment(self, segment_id: str, stack: tuple[str, ...]) -> BitMap:
        if segment_id in stack:
            raise SegmentCycle("filter", f"segment {segment_id} includes itself")
        if segment_id not in self.segments:
            self.segments[segment_id] = self.run(self.definitions[segment_id], (*stack, segment_id))
        return self.segments[segment_id]
