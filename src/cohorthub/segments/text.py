"""Human-readable text of a filter tree (Braze's `text_description`) and paths into the JSON."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cohorthub.segments.model import (
    And,
    AttributeLeaf,
    CohortLeaf,
    EventLeaf,
    IdentityLeaf,
    Node,
    Not,
    Or,
    SegmentLeaf,
    format_time,
)


def partner_label(partner: str) -> str:
    """ "heap" → "Heap Cohorts", the filter's name in the segment builder."""
    return f"{partner.replace('_', ' ').title()} Cohorts"


def describe(
    node: Node, *, cohort_names: Mapping[tuple[str, str], str], segment_names: Mapping[str, str]
) -> str:
    """One line such as `Heap Cohorts includes Trial abandoners AND NOT (country equals ES)`."""
    if isinstance(node, And | Or):
        word = " AND " if isinstance(node, And) else " OR "
        parts = [_wrap(c, cohort_names, segment_names) for c in node.children]
        return word.join(parts)
    if isinstance(node, Not):
        return f"NOT {_wrap(node.child, cohort_names, segment_names)}"
    if isinstance(node, CohortLeaf):
        name = cohort_names.get((node.partner, node.cohort_id), node.cohort_id)
        return f"{partner_label(node.partner)} {node.op} {name}"
    if isinstance(node, SegmentLeaf):
        return f"Segment membership {node.op} {segment_names.get(node.segment_id, node.segment_id)}"
    if isinstance(node, IdentityLeaf):
        return f"{node.field} {node.op}" + (f" {node.value}" if node.value else "")
    if isinstance(node, AttributeLeaf):
        value = node.value
        if node.op in ("before", "after") and isinstance(value, float):
            value = format_time(value)
        return f"{node.name} {node.op}" + ("" if value is None else f" {value}")
    return _event_text(node)


def _event_text(leaf: EventLeaf) -> str:
    what = f"event {leaf.name}" if leaf.kind == "event" else f"purchased {leaf.name or 'any product'}"
    if leaf.time is not None:
        return f"{what} {leaf.op} {format_time(leaf.time)}"
    window = f" in the last {leaf.within_days:g} days" if leaf.within_days is not None else ""
    return f"{what} {leaf.op.replace('_', ' ')} {leaf.count} times{window}"


def _wrap(node: Node, cohort_names: Mapping[tuple[str, str], str], segment_names: Mapping[str, str]) -> str:
    text = describe(node, cohort_names=cohort_names, segment_names=segment_names)
    return f"({text})" if isinstance(node, And | Or) and len(node.children) > 1 else text


def find_path(raw: Any, wanted: Callable[[dict[str, Any]], bool], path: str = "filter") -> str | None:
    """The path of the first leaf object of the JSON tree for which `wanted` holds."""
    if not isinstance(raw, dict):
        return None
    for key in ("and", "or"):
        if isinstance(raw.get(key), list):
            for i, child in enumerate(raw[key]):
                if (found := find_path(child, wanted, f"{path}.{key}[{i}]")) is not None:
                    return found
            return None
    if "not" in raw:
        return find_path(raw["not"], wanted, f"{path}.not")
    return path if wanted(raw) else None
