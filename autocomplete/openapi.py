"""``GET /openapi.json``: the OpenAPI 3.1 description of the HTTP API, written by hand.

The document is a static dict kept next to the handlers it describes; a test checks that every
HTTP route of the app is in it and nothing else, and schemathesis checks the running server
against it. Only the configurable limits (``max_k``, ``max_prefix_chars``, ``max_query_chars``,
``max_frame_bytes``) are filled in from the serving configuration when it is served. The
websocket ``/v1/ws`` is outside OpenAPI's reach: ``docs/protocol.md`` describes it.
"""

from __future__ import annotations

import copy
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from autocomplete.protocol import Limits

# text a person could have typed: no control characters (protocol._FORBIDDEN)
_TEXT_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
_JSON = "application/json"


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_BAD_REQUEST = _json(_ref("Error"), "A missing or malformed parameter; `code` says which rule was broken.")
_SESSION_PARAMETER = {
    "name": "session",
    "in": "query",
    "required": False,
    "description": "A session id from an earlier answer; without it, the `ac_session` cookie is used.",
    "schema": {"type": "string"},
}
_USER_PARAMETERS = [
    {
        "name": "X-Autocomplete-User",
        "in": "header",
        "required": False,
        "description": (
            "The person's signed user key, `<id>.<hex HMAC-SHA256 of id under serve.history_secret>` "
            '(docs/protocol.md, "User history"). A key that does not verify reads and writes '
            "nothing. Without one, the `ac_user` browser-id cookie names the history."
        ),
        "schema": {"type": "string"},
    },
    {
        "name": "user",
        "in": "query",
        "required": False,
        "description": "The signed user key, for clients that cannot set the header (it then sits in URLs).",
        "schema": {"type": "string"},
    },
    {
        "name": "history",
        "in": "query",
        "required": False,
        "description": "`false` (or `0`, `off`, `no`): no history is read or written for this request.",
        "schema": {"type": "string"},
    },
]
_RECENT = {
    "type": "object",
    "required": ["type", "seq", "items"],
    "properties": {
        "type": {"const": "recent"},
        "seq": {"type": "null"},
        "items": {
            "type": "array",
            "description": "The person's recent searches, most recent first.",
            "items": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
        },
    },
}
_FORGOTTEN = {
    "type": "object",
    "required": ["type", "seq", "query", "forgotten"],
    "properties": {
        "type": {"const": "forgotten"},
        "seq": {"type": "null"},
        "query": {"type": ["string", "null"], "description": "The query forgotten; null: all of them."},
        "forgotten": {
            "type": "boolean",
            "description": "false: the store could not be reached; try again.",
        },
    },
}
_SET_COOKIE = {
    "Set-Cookie": {
        "description": "The session cookie (HttpOnly, SameSite=Lax).",
        "schema": {"type": "string"},
    }
}

SCHEMA: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Session-aware autocomplete",
        "version": "1",
        "description": (
            "Query completions that take the session's previous queries into account. Browsers "
            "stream keystrokes over the websocket `/v1/ws` (see docs/protocol.md); this HTTP API "
            "answers one input at a time, records submitted queries, and serves browsers' search "
            "bars (OpenSearch)."
        ),
    },
    "paths": {
        "/v1/complete": {
            "get": {
                "operationId": "complete",
                "summary": "Completions of one typed text",
                "description": (
                    "Answered like a websocket input. With a session (cookie or `session`), the "
                    "session's recent queries are the context."
                ),
                "parameters": [
                    {
                        "name": "q",
                        "in": "query",
                        "required": True,
                        "description": "The typed text.",
                        "schema": {"type": "string", "maxLength": 100, "pattern": _TEXT_PATTERN},
                    },
                    {
                        "name": "k",
                        "in": "query",
                        "required": False,
                        "description": "How many completions (default: the server's `k`).",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 20},
                    },
                    _SESSION_PARAMETER,
                    *_USER_PARAMETERS,
                ],
                "responses": {
                    "200": {
                        **_json(_ref("Completions"), "The completions, best first."),
                        "headers": _SET_COOKIE,
                    },
                    "400": _BAD_REQUEST,
                },
            }
        },
        "/v1/submit": {
            "post": {
                "operationId": "submit",
                "summary": "Record a submitted query in the session (and the person's history)",
                "parameters": _USER_PARAMETERS,
                "requestBody": {
                    "required": True,
                    "content": {
                        _JSON: {
                            "schema": {
                                "type": "object",
                                "required": ["text"],
                                "properties": {
                                    "text": {
                                        "type": "string",
                                        "description": "The query; surrounding spaces are dropped.",
                                        "maxLength": 200,
                                        "allOf": [{"pattern": _TEXT_PATTERN}, {"pattern": "\\S"}],
                                    },
                                    "session": {
                                        "description": (
                                            "A session id; a value that is not a known session's id "
                                            "(or not a string) starts a new session."
                                        )
                                    },
                                    "user": {
                                        "type": "string",
                                        "description": "The signed user key (or the header).",
                                    },
                                    "history": {
                                        "type": "boolean",
                                        "description": "false: not added to the person's history.",
                                    },
                                    "idempotency_key": {
                                        "type": ["string", "null"],
                                        "pattern": "^[A-Za-z0-9_-]{8,64}$",
                                        "description": (
                                            "The same key on a retry: the query is stored once (null: none)."
                                        ),
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        **_json(_ref("Submitted"), "The query and whether the session store kept it."),
                        "headers": _SET_COOKIE,
                    },
                    "400": _BAD_REQUEST,
                    "413": _json(_ref("Error"), "The body is larger than the server's `max_frame_bytes`."),
                    "415": _json(_ref("Error"), "The body is not `application/json`."),
                },
            }
        },
        "/v1/session": {
            "get": {
                "operationId": "session",
                "summary": "The caller's session and its recent queries",
                "parameters": [_SESSION_PARAMETER],
                "responses": {
                    "200": {
                        **_json(
                            {
                                "type": "object",
                                "required": ["session", "previous"],
                                "properties": {
                                    "session": {"type": "string"},
                                    "previous": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                            "The session id (a new one if none was given) and its queries, oldest first.",
                        ),
                        "headers": _SET_COOKIE,
                    }
                },
            }
        },
        "/v1/history": {
            "get": {
                "operationId": "recentSearches",
                "summary": "The person's recent searches",
                "description": (
                    "The person named by the signed user key (header or parameter) or the browser-id "
                    "cookie; nobody (an empty list) without one, or with a key that does not verify."
                ),
                "parameters": [
                    {
                        "name": "k",
                        "in": "query",
                        "required": False,
                        "description": "How many, at most (default: the server's `k`).",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 20},
                    },
                    *_USER_PARAMETERS,
                ],
                "responses": {"200": _json(_RECENT, "Most recent first."), "400": _BAD_REQUEST},
            },
            "delete": {
                "operationId": "forgetHistory",
                "summary": "Forget the person's history, or one query of it, at once",
                "description": (
                    "Deleted from the store and from the next answer of every open connection of the "
                    "person on this worker; other workers read it afresh within "
                    "`serve.history_refresh_seconds`."
                ),
                "parameters": [
                    {
                        "name": "query",
                        "in": "query",
                        "required": False,
                        "description": "The one query to forget; without it, the whole history.",
                        "schema": {
                            "type": "string",
                            "maxLength": 200,
                            "allOf": [{"pattern": _TEXT_PATTERN}, {"pattern": "\\S"}],
                        },
                    },
                    *_USER_PARAMETERS,
                ],
                "responses": {"200": _json(_FORGOTTEN, "What was forgotten."), "400": _BAD_REQUEST},
            },
        },
        "/v1/suggest": {
            "get": {
                "operationId": "suggest",
                "summary": "OpenSearch suggestions for a browser's search bar",
                "description": (
                    'The OpenSearch Suggestions format: `["ro", ["roses", "rock band"]]`. The '
                    "session cookie, when the browser sends one, gives the context."
                ),
                "parameters": [
                    {
                        "name": "q",
                        "in": "query",
                        "required": True,
                        "description": "The text in the search bar.",
                        "schema": {"type": "string", "maxLength": 100, "pattern": _TEXT_PATTERN},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The text and its completions, best first.",
                        "content": {
                            "application/x-suggestions+json": {
                                # [text, [completions]]; not written with prefixItems, which
                                # schemathesis 4 turns into a draft-4 tuple it then rejects
                                "schema": {
                                    "type": "array",
                                    "items": {
                                        "anyOf": [
                                            {"type": "string"},
                                            {"type": "array", "items": {"type": "string"}},
                                        ]
                                    },
                                    "minItems": 2,
                                    "maxItems": 2,
                                }
                            }
                        },
                    },
                    "400": _BAD_REQUEST,
                },
            }
        },
        "/opensearch.xml": {
            "get": {
                "operationId": "opensearchDescription",
                "summary": "The OpenSearch description: lets a browser add the service as a search engine",
                "responses": {
                    "200": {
                        "description": "OpenSearch 1.1 description with the suggestions URL.",
                        "content": {"application/opensearchdescription+xml": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness: the process answers",
                "responses": {
                    "200": _json(
                        {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
                        "Alive.",
                    )
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness: the model is loaded and warm",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": [
                                "status",
                                "model",
                                "model_id",
                                "labels",
                                "trained_at",
                                "session_store",
                            ],
                            "properties": {
                                "status": {"const": "ready"},
                                "model": {"type": "string", "description": "The model kind (xmr, mpc)."},
                                "model_id": {
                                    "type": "string",
                                    "description": "The model in service: the checksum of its params.json.",
                                },
                                "labels": {"type": "integer", "description": "Its number of labels."},
                                "trained_at": {"type": "string", "description": "When it was trained."},
                                "session_store": {
                                    "enum": ["ok", "degraded"],
                                    "description": "degraded: inputs are answered without context.",
                                },
                                "history_store": {
                                    "enum": ["ok", "degraded", "off"],
                                    "description": "degraded: inputs are answered without history.",
                                },
                            },
                        },
                        "Ready for traffic.",
                    ),
                    "503": _json(
                        {
                            "type": "object",
                            "required": ["status"],
                            "properties": {"status": {"type": "string"}},
                        },
                        "Starting or stopping: send no traffic.",
                    ),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "The Prometheus text exposition format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": _json(_ref("Error"), "`[serve] metrics_token` is set and was not sent."),
                    "403": _json(_ref("Error"), "No token is set and the client is not on the loopback."),
                },
            }
        },
        "/admin/reload": {
            "post": {
                "operationId": "adminReload",
                "summary": "Load the model folder `--model` names now, in every worker",
                "description": (
                    "The folder is verified against its checksums, copied, loaded and warmed in "
                    "the background while the model in service keeps answering, then swapped in "
                    "between two keystrokes. The worker that answers asks the supervisor to send "
                    "SIGHUP to every worker, so all of them reload. Needs `Authorization: Bearer "
                    "<serve.admin_token>`."
                ),
                "security": [{"adminToken": []}],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["type", "result", "model_id", "seconds"],
                            "properties": {
                                "type": {"const": "reload"},
                                "result": {
                                    "enum": ["loaded", "unchanged"],
                                    "description": "unchanged: the folder holds the model in service.",
                                },
                                "model_id": {"type": "string", "description": "The model now in service."},
                                "seconds": {"type": "number", "description": "Time to load and warm it."},
                            },
                        },
                        "This worker serves the folder's model.",
                    ),
                    "401": _json(_ref("Error"), "The token is missing or wrong."),
                    "403": _json(
                        _ref("Error"), "`[serve] admin_token` is not set: the admin endpoints are off."
                    ),
                    "409": _json(_ref("Error"), "The app serves a completer given in code, not a folder."),
                    "422": _json(
                        _ref("Error"),
                        "The folder was refused (code `model_refused`; the message names the damaged "
                        "or missing file); the model before keeps serving.",
                    ),
                },
            }
        },
        "/admin/blocklist": {
            "get": {
                "operationId": "adminBlocklist",
                "summary": "The live blocklist",
                "security": [{"adminToken": []}],
                "responses": {
                    "200": _json(_ref("Blocklist"), "The words and patterns in service."),
                    "401": _json(_ref("Error"), "The token is missing or wrong."),
                    "403": _json(
                        _ref("Error"), "`[serve] admin_token` is not set: the admin endpoints are off."
                    ),
                },
            },
            "post": {
                "operationId": "adminReplaceBlocklist",
                "summary": "Replace the live blocklist",
                "description": (
                    "Completions with a listed word (case, accents and punctuation inside a word "
                    "do not matter; an entry of several words blocks that word sequence) or "
                    "matching a listed pattern (Python regular expression, case-insensitive) are "
                    "left out of every answer from the next input on, whatever proposed them. "
                    "The list is written to the file `[serve] blocklist`, which every worker "
                    "watches."
                ),
                "security": [{"adminToken": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        _JSON: {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "words": {"type": "array", "items": {"type": "string"}},
                                    "patterns": {"type": "array", "items": {"type": "string"}},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(_ref("Blocklist"), "The list now in service."),
                    "400": _BAD_REQUEST,
                    "401": _json(_ref("Error"), "The token is missing or wrong."),
                    "403": _json(
                        _ref("Error"), "`[serve] admin_token` is not set: the admin endpoints are off."
                    ),
                    "409": _json(
                        _ref("Error"), "`[serve] blocklist` (the file the list is kept in) is not set."
                    ),
                },
            },
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1.")},
            }
        },
        "/": {
            "get": {
                "operationId": "demoPage",
                "summary": "The demo page",
                "responses": {
                    "200": {"description": "HTML.", "content": {"text/html": {"schema": {"type": "string"}}}}
                },
            }
        },
    },
    "components": {
        "securitySchemes": {
            "adminToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "`[serve] admin_token` (AUTOCOMPLETE_ADMIN_TOKEN).",
            }
        },
        "schemas": {
            "Blocklist": {
                "type": "object",
                "required": ["type", "words", "patterns"],
                "properties": {
                    "type": {"const": "blocklist"},
                    "words": {"type": "array", "items": {"type": "string"}},
                    "patterns": {"type": "array", "items": {"type": "string"}},
                },
            },
            "Completions": {
                "type": "object",
                "required": ["type", "seq", "text", "items", "ms", "session"],
                "properties": {
                    "type": {"const": "completions"},
                    "seq": {"type": "null"},
                    "text": {"type": "string", "description": "The text the completions are for."},
                    "items": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["text", "score"],
                            "properties": {"text": {"type": "string"}, "score": {"type": "number"}},
                        },
                    },
                    "ms": {"type": "number", "description": "Milliseconds the model took."},
                    "session": {"type": ["string", "null"]},
                },
            },
            "Submitted": {
                "type": "object",
                "required": ["type", "text", "stored", "session"],
                "properties": {
                    "type": {"const": "submitted"},
                    "text": {"type": "string"},
                    "stored": {
                        "enum": [True, False, "pending"],
                        "description": (
                            'true: in the session store; "pending": queued and retried until it is; '
                            "false: refused (the queue was full)."
                        ),
                    },
                    "session": {"type": "string"},
                },
            },
            "Error": {
                "type": "object",
                "required": ["type", "code", "message"],
                "properties": {
                    "type": {"const": "error"},
                    "seq": {"type": "null"},
                    "code": {"type": "string", "examples": ["bad_field", "too_long", "control_characters"]},
                    "message": {"type": "string", "description": "What is wrong, in words."},
                },
            },
        },
    },
}


def schema_for(limits: Limits) -> dict[str, Any]:
    """:data:`SCHEMA` with the limits of a running server in place of the defaults."""
    doc = copy.deepcopy(SCHEMA)
    paths = doc["paths"]
    for path in ("/v1/complete", "/v1/suggest"):
        paths[path]["get"]["parameters"][0]["schema"]["maxLength"] = limits.max_prefix_chars
    paths["/v1/complete"]["get"]["parameters"][1]["schema"]["maximum"] = limits.max_k
    body = paths["/v1/submit"]["post"]["requestBody"]["content"][_JSON]["schema"]
    body["properties"]["text"]["maxLength"] = limits.max_query_chars
    history = paths["/v1/history"]
    history["get"]["parameters"][0]["schema"]["maximum"] = limits.max_k
    history["delete"]["parameters"][0]["schema"]["maxLength"] = limits.max_query_chars
    return doc


async def openapi_endpoint(request: Request) -> Response:
    return JSONResponse(schema_for(request.state.service.limits))


ROUTES = [Route("/openapi.json", openapi_endpoint)]
