"""The OpenAPI document, generated from the wire types each route module declares.

Path parameters come from the path template, query parameters from each operation's `query`
(with the schema the server enforces through `api/params.py`). Every operation documents 400:
the edge refuses a path or query parameter with a NUL character before any route runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from cohorthub import __version__


@dataclass(frozen=True, slots=True)
class Param:
    """A query parameter with the schema the server enforces."""

    name: str
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


#: A query parameter: (name, description) documents an optional string.
Query = tuple[str, str] | Param


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
    query: tuple[Query, ...] = ()
    description: str = ""
    extra_responses: dict[int, str] = field(default_factory=dict)
    path_params: dict[str, str] = field(default_factory=dict)  # name -> description
    media: dict[str, dict[str, Any]] = field(default_factory=dict)  # other success media types
    request_media: dict[str, dict[str, Any]] = field(default_factory=dict)  # a body other than JSON


_ERROR_TEXT = {
    400: "Invalid request",
    401: "Invalid or missing credentials",
    403: "The key lacks the permission",
    404: "Not found",
    413: "Body larger than the configured limit",
    415: "Body is not of a type the operation takes",
    423: "Resource locked (retry after Retry-After seconds)",
    429: "Hourly quota used (retry after Retry-After seconds)",
}
_PATH_PARAM = re.compile(r"\{(\w+)\}")
#: Patterns for text the stores can hold (no NUL), and for text that is not blank as well.
NO_NUL = "^[^\\x00]*$"
NOT_BLANK = "^[^\\x00]*[^\\s\\x00][^\\x00]*$"


def documented(**schema: Any) -> msgspec.Meta:
    """A field's rule shown in /openapi.json but enforced by the domain rules, with their own texts."""
    return msgspec.Meta(extra_json_schema=schema)


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
        success = _content(refs.get(op.response), "Success")
        for media, schema in op.media.items():
            success.setdefault("content", {})[media] = {"schema": schema}
        entry: dict[str, Any] = {
            "operationId": _operation_id(op),
            "summary": op.summary,
            "tags": [op.tag],
            "responses": {str(op.status): success},
        }
        if op.description:
            entry["description"] = op.description
        has_body = op.request is not None or bool(op.request_media)
        for code in sorted({400, *op.errors, *((413, 415) if has_body else ())}):
            entry["responses"][str(code)] = _content(refs[ErrorBody], _ERROR_TEXT.get(code, "Error"))
        if op.request is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[op.request]}},
            }
        elif op.request_media:
            content = {media: {"schema": schema} for media, schema in op.request_media.items()}
            entry["requestBody"] = {"required": True, "content": content}
        if parameters := [*_path_parameters(op), *map(_query_parameter, op.query)]:
            entry["parameters"] = parameters
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


def _operation_id(op: Operation) -> str:
    words = re.sub(r"[{}]", "", op.path).strip("/").replace("/", "_").replace(".", "_")
    return f"{op.method.lower()}_{words or 'root'}"


def _path_parameters(op: Operation) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": op.path_params.get(name, f"The {name.replace('_', ' ')}"),
            "schema": {"type": "string", "minLength": 1},
        }
        for name in _PATH_PARAM.findall(op.path)
    ]


def _query_parameter(query: Query) -> dict[str, Any]:
    p = query if isinstance(query, Param) else Param(*query)
    return {
        "name": p.name,
        "in": "query",
        "required": p.required,
        "description": p.description,
        "schema": p.schema,
    }


def _content(schema: Any, description: str) -> dict[str, Any]:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {"application/json": {"schema": schema}}}
