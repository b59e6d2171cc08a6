"""The segment builder's words, translated on the server and handed to `static/builder.js`."""

from __future__ import annotations

from collections.abc import Callable

from cohorthub.web.i18n import N_

_TEXT = {
    "all": N_("All of (AND)"),
    "any": N_("Any of (OR)"),
    "not": N_("Not"),
    "add_filter": N_("Add filter"),
    "add_group": N_("Add group"),
    "remove": N_("Remove"),
    "filter_type": N_("Filter"),
    "operator": N_("Operator"),
    "value": N_("Value"),
    "attribute": N_("Attribute"),
    "custom_attribute": N_("Custom attribute"),
    "data_type": N_("Data type"),
    "event": N_("Custom event"),
    "purchase": N_("Purchase"),
    "identity": N_("Identity"),
    "segment": N_("Segment membership"),
    "event_name": N_("Event name"),
    "product_id": N_("Product id (empty: any product)"),
    "count": N_("Times"),
    "within_days": N_("Within the last days (optional)"),
    "time_value": N_("Date (YYYY-MM-DD)"),
    "field": N_("Field"),
    "search_cohorts": N_("Search cohorts"),
    "cohort": N_("Cohort"),
    "no_cohorts": N_("No cohorts match"),
    "users": N_("users"),
    "computing": N_("Computing…"),
    "empty_group": N_("Empty group: add a filter"),
    "group": N_("Group"),
    "includes": N_("includes"),
    "excludes": N_("excludes"),
    "equals": N_("equals"),
    "not_equals": N_("does not equal"),
    "matches_regex": N_("matches regex"),
    "starts_with": N_("starts with"),
    "exists": N_("exists"),
    "blank": N_("is blank"),
    "eq": "=",
    "ne": "≠",
    "lt": "<",
    "le": "≤",
    "gt": ">",
    "ge": "≥",
    "before": N_("before"),
    "after": N_("after"),
    "more_than_days_ago": N_("more than N days ago"),
    "less_than_days_ago": N_("less than N days ago"),
    "includes_value": N_("includes value"),
    "size_eq": N_("has exactly N items"),
    "size_lt": N_("has fewer than N items"),
    "size_gt": N_("has more than N items"),
    "at_least": N_("at least"),
    "at_most": N_("at most"),
    "exactly": N_("exactly"),
    "first_before": N_("first done before"),
    "first_after": N_("first done after"),
    "last_before": N_("last done before"),
    "last_after": N_("last done after"),
    "string": N_("text"),
    "number": N_("number"),
    "boolean": N_("true/false"),
    "array": N_("list"),
    "time": N_("date/time"),
    "saved": N_("Saved"),
}


def builder_text(gettext: Callable[[str], str]) -> dict[str, str]:
    """Every builder word in the request's language."""
    return {key: gettext(text) for key, text in _TEXT.items()}
