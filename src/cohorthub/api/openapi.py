"""The OpenAPI document, generated from the wire types each route module declares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from cohorthub import __version__


@dataclass(frozen=True, slots=True)
class Operation:
    """One documented endpoint."""

    method: str
    path: str
    summary: str
    tag: str
    request: Any = None  # a msgspec type, or None
    response: Any = None
    status: int = 200
    errors: tuple[int, ...] = ()
    auth: str = "bearer"  # bearer | partner-body | none
    query: tuple[tuple[str, str], ...] = ()  # (name, description)
    description: str = ""
    extra_responses: dict[int, str] = field(default_factory=dict)


_ERROR_TEXT = {
    400: "Invalid request",
    401: "Invalid or missing credentials",
    403: "The key lacks the permission",
    404: "Not found",
    413: "Body larger than the configured limit",
    415: "Body is not JSON",
    423: "Resource locked (retry after Retry-After seconds)",
    429: "Hourly quota used (retry after Retry-After seconds)",
}


class ErrorBody(msgspec.Struct):
    """Every error response."""

    message: str
    errors: list[str] | None = None
    request_id: str | None = None  # also in the X-Request-Id header and the request log


def build_openapi(operations: list[Operation], *, server_url: str) -> dict[str, Any]:
    """An OpenAPI 3.1 document for `operations`."""
    types = list(dict.fromkeys(t for op in operations for t in (op.request, op.response) if t is not None))
    schemas, components = msgspec.json.schema_components(
        [*types, ErrorBody], ref_template="#/components/schemas/{name}"
    )
    refs = dict(zip([*types, ErrorBody], schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        entry: dict[str, Any] = {
            "summary": op.summary,
            "tags": [op.tag],
            "responses": {str(op.status): _content(refs.get(op.response), "Success")},
        }
        if op.description:
            entry["description"] = op.description
        for code in op.errors:
            entry["responses"][str(code)] = _content(refs[ErrorBody], _ERROR_TEXT.get(code, "Error"))
        if op.request is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[op.request]}},
            }
        if op.query:
            entry["parameters"] = [
                {"name": n, "in": "query", "required": False, "description": d, "schema": {"type": "string"}}
                for n, d in op.query
            ]
        if op.auth == "bearer":
            entry["security"] = [{"restApiKey": []}]
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "cohorthub", "version": __version__},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"restApiKey": {"type": "http", "scheme": "bearer"}},
        },
    }


def _content(schema: Any, description: str) -> dict[str, Any]:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {"application/json": {"schema": schema}}}
