"""``/admin/*``: reload the model, read and replace the live blocklist. Bearer token only.

Every admin request needs ``Authorization: Bearer <serve.admin_token>`` (compared in constant
time): a wrong or missing one is answered 401; with no token configured the endpoints are off
(403). A request reaches one worker; it asks the supervisor to pass SIGHUP to every worker
(:func:`autocomplete.workers.reload_all_workers`), so all of them reload, and answers with what
its own worker did.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette import status
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from autocomplete import protocol
from autocomplete.protocol import ProtocolError
from autocomplete.service import Service
from autocomplete.workers import reload_all_workers
from indexer.errors import ConfigError

BLOCKLIST_PATH = "/admin/blocklist"


def _authorized(request: Request) -> Service:
    service: Service = request.state.service
    token = service.config.admin_token
    if not token:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "the admin endpoints are off: set serve.admin_token (AUTOCOMPLETE_ADMIN_TOKEN)",
        )
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "send Authorization: Bearer <serve.admin_token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return service


async def reload_endpoint(request: Request) -> Response:
    """``POST /admin/reload``: load the folder ``--model`` names now, in every worker."""
    service = _authorized(request)
    if service.reloader is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "this app serves a completer, not a model folder")
    done = await service.reloader.reload("POST /admin/reload", force=True)
    service.exclusions.check()
    reload_all_workers()  # after this worker's load: the others load while this one serves
    if done.result == "refused":
        refusal = protocol.error("model_refused", done.error)
        return JSONResponse(refusal | {"model_id": done.model_id}, status_code=422)
    body: dict[str, Any] = {"type": "reload", "result": done.result, "model_id": done.model_id}
    return JSONResponse(body | {"seconds": done.seconds})


async def blocklist_endpoint(request: Request) -> Response:
    """``GET /admin/blocklist``: the list in service. ``POST`` ``{"words": [...], "patterns":
    [...]}``: replace it (file written atomically, every worker told)."""
    service = _authorized(request)
    live = service.exclusions
    if request.method == "POST":
        words, patterns = await _blocklist_body(request)
        try:
            live.replace(words, patterns)
        except ConfigError as exc:
            if live.path is None:
                raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
            raise ProtocolError("bad_field", str(exc)) from None
        reload_all_workers()
    words, patterns = live.lines()
    return JSONResponse({"type": "blocklist", "words": words, "patterns": patterns})


async def _blocklist_body(request: Request) -> tuple[list[str], list[str]]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send the body as application/json")
    try:
        data = json.loads(await request.body())
    except (ValueError, RecursionError):
        raise ProtocolError("bad_json", "the body is not valid JSON") from None
    if not isinstance(data, dict) or set(data) - {"words", "patterns"}:
        raise ProtocolError("bad_frame", 'the body must be {"words": [...], "patterns": [...]}')
    lists = []
    for name in ("words", "patterns"):
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ProtocolError("bad_field", f'"{name}" must be a list of strings')
        lists.append(value)
    return lists[0], lists[1]


ROUTES = [
    Route("/admin/reload", reload_endpoint, methods=["POST"]),
    Route(BLOCKLIST_PATH, blocklist_endpoint, methods=["GET", "POST"]),
]
