"""The bridge's OpenAPI 3.1 document (served at /openapi.json)."""

from __future__ import annotations

from typing import Any

from cardkit import __version__
from cardkit.errors import registry

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


def problem_codes() -> list[str]:
    """Every code a problem document may carry: the bridge's own and every error class's
    (``cardkit.errors.registry``); documented, not an enum, so a new code never breaks a
    client that validates answers against this document."""
    return sorted(BRIDGE_CODES | set(registry()))


def _problem_ref() -> dict[str, Any]:
    return {
        "description": "refused (problem document, RFC 9457)",
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def openapi_document(port: int) -> dict[str, Any]:
    card_field: dict[str, Any] = {"type": "string", "maxLength": 200, "description": "reader"}
    card_request: dict[str, Any] = {
        "type": "object",
        "properties": {"card": card_field},
        "additionalProperties": True,
    }
    errors = {
        str(code): _problem_ref() for code in (400, 401, 403, 409, 413, 415, 423, 502, 503, 504)
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
        "paths": {
            "/v1/status": {
                "get": {
                    "summary": "Agent version, state, readers and cards",
                    "responses": {
                        "200": {
                            "description": "status",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Status"}
                                }
                            },
                        },
                        **errors,
                    },
                }
            },
            "/v1/version": {
                "get": {
                    "summary": "Agent name and version",
                    "responses": {"200": {"description": "version"}, **errors},
                }
            },
            "/v1/events": {
                "get": {
                    "summary": "Server-sent events of reader and card changes",
                    "responses": {"200": {"description": "text/event-stream"}, **errors},
                }
            },
            "/v1/auth": {
                "post": {
                    "summary": "Sign the portal's challenge with the inserted CPS/CPE",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["nonce"],
                                    "properties": {
                                        "nonce": {
                                            "type": "string",
                                            "minLength": 43,
                                            "maxLength": 256,
                                        },
                                        "card": card_field,
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "the authentication token (cardkit:1)",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Token"}
                                }
                            },
                        },
                        **errors,
                    },
                }
            },
            "/v1/vitale/read": {
                "post": {
                    "summary": "The people on the inserted Vitale card, with their NIRs",
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": card_request}},
                    },
                    "responses": {"200": {"description": "card contents"}, **errors},
                }
            },
        },
        "components": {
            "schemas": {
                "Problem": {
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
                },
                "Status": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "version": {"type": "string"},
                        "state": {"type": "string"},
                        "pin_provider": {"type": "string"},
                        "readers": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "Token": {
                    "type": "object",
                    "required": ["format", "certificate", "algorithm", "signature", "issued_at"],
                    "properties": {
                        "format": {"const": "cardkit:1"},
                        "certificate": {"type": "string"},
                        "algorithm": {"enum": ["RS256", "PS256", "ES256"]},
                        "signature": {"type": "string"},
                        "issued_at": {"type": "string"},
                        "app_version": {"type": "string"},
                    },
                },
            }
        },
    }
