"""The bridge's OpenAPI 3.1 document (served at /openapi.json), built from the endpoint
table: paths from its rows, schemas from their TypedDicts."""

from __future__ import annotations

import types
import typing
from typing import Any

from cardkit import __version__
from cardkit.errors import registry
from cardkit.pcsc_bridge.contract import ENDPOINTS, Endpoint, Kind, Text, fields_of

#: Refusals the bridge makes itself, before any service call.
BRIDGE_CODES = frozenset(
    {
        "host_not_allowed",
        "origin_not_allowed",
        "peer_not_allowed",
        "too_large",
        "unsupported_media_type",
        "bad_request",
        "not_found",
        "method_not_allowed",
        "timeout",
        "overloaded",
        "internal_error",
    }
)
#: What the front door answers before any endpoint: wrong Host or Origin, body, overload.
FRONT_DOOR_ERRORS = (403, 413, 415, 503)


def problem_codes() -> list[str]:
    """Every code a problem document may carry: the bridge's own and every error class's
    (``cardkit.errors.registry``); documented, not an enum, so a new code never breaks a
    client that validates answers against this document."""
    return sorted(BRIDGE_CODES | set(registry()))


def is_typed_dict(kind: Any) -> bool:
    return isinstance(kind, type) and typing.is_typeddict(kind)


class Schemas:
    """JSON Schemas of Python types; each TypedDict once, under components/schemas."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def of(self, kind: Any) -> dict[str, Any]:
        origin, args = typing.get_origin(kind), typing.get_args(kind)
        if origin is typing.Annotated:
            schema = self.of(args[0])
            for mark in args[1:]:
                if isinstance(mark, Text):
                    schema["minLength"] = mark.min_length
                    if mark.max_length is not None:
                        schema["maxLength"] = mark.max_length
                    if mark.pattern is not None:
                        schema["pattern"] = f"^{mark.pattern}$"
            return schema
        if origin in (typing.Union, types.UnionType):
            return {"anyOf": [self.of(a) for a in args]}
        if origin is list:
            return {"type": "array", "items": self.of(args[0])}
        if origin is dict:
            return {"type": "object"}
        if is_typed_dict(kind):
            return self._object(kind)
        simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
        if kind is type(None):
            return {"type": "null"}
        if kind in simple:
            return {"type": simple[kind]}
        return {}  # Any

    def _object(self, kind: type) -> dict[str, Any]:
        name = kind.__name__
        if name not in self.components:
            self.components[name] = {}  # a placeholder: recursion stops here
            fields = fields_of(kind)
            properties = {f.name: self.of(f.hint) for f in fields}
            required = [f.name for f in fields if f.required]
            self.components[name] = {
                "type": "object",
                "properties": properties,
                "required": required,
                **({"description": kind.__doc__.strip()} if kind.__doc__ else {}),
            }
        return {"$ref": f"#/components/schemas/{name}"}


def _problem_ref() -> dict[str, Any]:
    return {
        "description": "refused (problem document, RFC 9457)",
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def _operation(row: Endpoint, schemas: Schemas) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": row.summary}
    if row.response is not None:
        media = "text/event-stream" if row.kind is Kind.EVENTS else "application/json"
        answer["content"] = {media: {"schema": schemas.of(row.response)}}
    operation: dict[str, Any] = {
        "operationId": row.name,
        "summary": row.summary,
        "responses": {
            "200": answer,
            **{str(s): _problem_ref() for s in sorted({*FRONT_DOOR_ERRORS, *row.errors})},
        },
    }
    if row.request is not None:
        operation["requestBody"] = {
            "required": any(f.required for f in fields_of(row.request)),
            "content": {"application/json": {"schema": schemas.of(row.request)}},
        }
    if row.consent is not None:
        operation["x-consent"] = row.consent
    if row.control:
        operation["x-control-channel"] = True
    return operation


def openapi_document(port: int, endpoints: tuple[Endpoint, ...] = ENDPOINTS) -> dict[str, Any]:
    schemas = Schemas()
    paths: dict[str, Any] = {}
    for row in endpoints:
        paths.setdefault(row.path, {})[row.method.lower()] = _operation(row, schemas)
    schemas.components["Problem"] = {
        "type": "object",
        "required": ["status", "code"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "code": {
                "type": "string",
                "description": "stable code, one of: " + ", ".join(problem_codes()),
            },
            "detail": {"type": "string"},
            "tries_left": {"type": ["integer", "null"]},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cardkit agent bridge",
            "version": __version__,
            "description": "Localhost API for web portals: CPS/CPE login and Vitale reading. "
            "Every request needs an allowed Origin and a loopback Host. The PIN never travels "
            "over HTTP: the agent asks for it.",
        },
        "servers": [{"url": f"http://127.0.0.1:{port}"}],
        "paths": paths,
        "components": {"schemas": schemas.components},
    }
