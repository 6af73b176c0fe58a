"""The Starlette app: ``/v1/ws`` keystroke stream, HTTP API, health, metrics, the demo page.

``create_app`` builds the app; its lifespan loads and JIT-warms the model, opens the session
store (Redis pool or process memory) and only then reports ready. ``run`` serves it with uvicorn,
through an app factory so that each of ``--workers N`` processes builds its own resources.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
import signal
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from starlette import status
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from autocomplete import admin, openapi, opensearch, protocol
from autocomplete.bodylimit import BodyLimit
from autocomplete.completer import Completer, load_completer
from autocomplete.config import ServeConfig, load_serve_config
from autocomplete.cors import ListedOriginsCORS
from autocomplete.exclusions import Exclusions, LiveExclusions
from autocomplete.history import Histories, Identity
from autocomplete.holder import ModelHolder, freeze_heap
from autocomplete.hosts import AllowedHosts
from autocomplete.limits import is_loopback
from autocomplete.livefeed import LiveFeed, LiveStore
from autocomplete.metrics import CONTENT_TYPE, ServiceMetrics
from autocomplete.protocol import ProtocolError
from autocomplete.reload import ModelReloader, Watcher, signature
from autocomplete.service import Service
from autocomplete.websocket import HISTORY_OFF, serve_connection, set_browser_cookie, set_session_cookie
from autocomplete.workers import serve as serve_with_workers
from indexer.manifest import snapshot
from sessions.base import SessionStore
from sessions.guard import GuardedSessionStore
from sessions.history import GuardedHistoryStore, HistoryStore, MemoryHistoryStore
from sessions.ids import SessionIds
from sessions.memory import MemorySessionStore
from sessions.redis import RedisSessionStore
from sessions.redis_history import RedisHistoryStore
from sessions.users import UserKeys

logger = logging.getLogger("autocomplete.server")
STATIC_DIR = Path(__file__).parent / "static"
MODEL_ENV = "AUTOCOMPLETE_SERVE_MODEL"
CONFIG_ENV = "AUTOCOMPLETE_SERVE_CONFIG"
SECRET_ENV = "AUTOCOMPLETE_SESSION_SECRET"
SESSION_HEADER = "x-autocomplete-session"
USER_HEADER = "x-autocomplete-user"
_PLACEHOLDER = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Autocomplete</title>"
    "<p>The autocomplete service is running. The demo page is not installed; "
    "see <code>docs/protocol.md</code> for the API.</p></html>"
)


def create_app(
    model: str | Path | None = None,
    config: ServeConfig | None = None,
    *,
    completer: Completer | None = None,
    store: SessionStore | None = None,
    history_store: HistoryStore | None = None,
    live_store: LiveStore | None = None,
) -> Starlette:
    """The service app for a model folder (or an already loaded ``completer``, for tests).

    ``store`` and ``history_store`` default to Redis when ``config.redis_url`` is set, else
    process memory. Live counts (``serve.live``) use the same backend; a ``completer`` built with
    a live view reads them only with a ``live_store`` given.
    """
    if (model is None) == (completer is None):
        raise TypeError("create_app() needs exactly one of model=<folder> or completer=<Completer>")
    config = config or ServeConfig()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[Mapping[str, Any]]:
        _redact_uvicorn_logs()
        asyncio.get_running_loop().set_exception_handler(nameless_background_errors)
        metrics = ServiceMetrics()
        source = Path(model) if model is not None else None
        seen = signature(source) if source is not None else None
        live: LiveFeed | None = None
        on_live_error = lambda op: metrics.store_error(f"live_{op}")  # noqa: E731
        if completer is not None:
            loaded = completer
            view = getattr(completer, "live", None)
            if config.live and live_store is not None and view is not None:
                live = LiveFeed(live_store, view, config.live_refresh_seconds, on_error=on_live_error)
        else:  # a private verified copy: the folder given may be rewritten while we serve
            folder = Path(seen[0]) if seen else source
            copy = snapshot(folder, config.model_snapshot_dir or None)  # type: ignore[arg-type]
            if config.live:
                live = LiveFeed.for_model(copy, config, on_error=on_live_error)
            # checksums read again: no traffic yet
            loaded = load_completer(copy, warm_up=True, live=live.view if live else None)
        if live is not None:
            await live.start()  # the counts so far (a restarted worker has them at once)
        exclusions = LiveExclusions(
            config.blocklist, config.blocklist_max_bytes, on_load=_count_blocklist(metrics)
        )
        backing = store if store is not None else _default_store(config)
        in_process = isinstance(backing, MemorySessionStore)  # answers at once: no timer per call
        sessions = GuardedSessionStore(
            backing, **_guard_options(config, metrics, in_process), on_outbox=metrics.outbox.set
        )
        if not await sessions.ping():
            logger.warning("the session store does not answer; serving without context until it does")
        histories = await _histories(config, history_store, metrics)
        limits = Service.limits_of(config)
        holder = ModelHolder(loaded)
        freeze_heap()  # no traffic yet
        reloader = None
        if source is not None:
            reloader = ModelReloader(
                source,
                holder,
                metrics,
                config.model_snapshot_dir,
                seen=seen,
                live=live.view if live else None,
            )
        service = Service(
            holder, sessions, config, metrics, limits, ready=True, histories=histories, live=live
        )
        service.exclusions, service.reloader = exclusions, reloader
        metrics.serving(loaded.info)
        watching = Watcher(reloader, exclusions, config.reload_poll_seconds)
        logger.info(
            "ready: %s model %s, %s session store",
            loaded.kind,
            loaded.info["id"],
            type(sessions.store).__name__,
        )
        try:
            yield {"service": service}
        finally:
            service.ready = False
            await watching.aclose()
            await sessions.close()
            if histories.store is not None:
                await histories.store.close()
            if live is not None:
                await live.close()

    # one route a line, in path order: other changes add theirs without touching these
    routes = [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
        Route("/v1/complete", complete_endpoint),
        Route("/v1/submit", submit_endpoint, methods=["POST"]),
        Route("/v1/session", session_endpoint),
        Route("/v1/history", history_endpoint, methods=["GET", "DELETE"]),
        WebSocketRoute("/v1/ws", websocket_endpoint),
        *openapi.ROUTES,
        *opensearch.ROUTES,
        *admin.ROUTES,
    ]
    if STATIC_DIR.is_dir():
        routes.append(Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"))
    # Host allow-list first: a page on a rebound DNS name reaches nothing, websocket included
    middleware: list[Middleware] = [Middleware(AllowedHosts, allowed=config.allowed_hosts)]
    if config.allowed_origins:  # pages of other origins may use the HTTP fallback
        middleware.append(Middleware(ListedOriginsCORS, allowed=config.allowed_origins))
    # inside CORS, so that a refused body's 413 carries its headers
    middleware.append(
        Middleware(
            BodyLimit,
            max_bytes=config.max_frame_bytes,
            larger={admin.BLOCKLIST_PATH: config.blocklist_max_bytes},
        )
    )
    return Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, ProtocolError: _protocol_error},
    )


def _count_blocklist(metrics: ServiceMetrics) -> Callable[[str, Exclusions], None]:
    def counted(result: str, exclusions: Exclusions) -> None:
        metrics.blocklist_loads.labels(result).inc()
        metrics.blocklist_entries.set(exclusions.entries)

    return counted


def session_ids(config: ServeConfig) -> SessionIds:
    """Ids signed with ``serve.session_secret``; without one, a key of this process only."""
    grace = (config.session_secret_previous,) if config.session_secret_previous else ()
    return SessionIds(config.session_secret or None, grace)


def _redis_options(config: ServeConfig) -> dict[str, Any]:
    """The connection settings every Redis store of the service shares."""
    return {
        "socket_timeout": config.redis_socket_timeout,
        "connect_timeout": config.redis_connect_timeout,
        "max_connections": config.redis_max_connections,
        "pool_timeout": config.redis_pool_timeout,
        "retries": config.redis_retries,
        "max_item_bytes": 4 * config.max_query_chars,
    }


def _guard_options(config: ServeConfig, metrics: ServiceMetrics, in_process: bool) -> dict[str, Any]:
    """The guard settings the session and history stores share (no timer for an in-process store:
    it answers at once)."""
    return {
        "timeout": None if in_process else config.store_timeout_seconds,
        "write_timeout": None if in_process else config.store_write_timeout_seconds,
        "retry_after": config.store_retry_seconds,
        "log_interval": config.store_log_interval_seconds,
        "outbox_size": config.outbox_size,
        "outbox_max_age": config.outbox_max_age_seconds,
        "on_call": metrics.store_call,
        "on_error": metrics.store_error,
    }


def _default_store(config: ServeConfig) -> SessionStore:
    ids = session_ids(config)
    if config.redis_url:
        return RedisSessionStore(
            config.redis_url,
            prefix=config.redis_prefix,
            ttl_seconds=config.session_ttl_seconds,
            history_length=config.history_length,
            **_redis_options(config),
            ids=ids,
        )
    return MemorySessionStore(
        ttl_seconds=config.session_ttl_seconds,
        history_length=config.history_length,
        max_sessions=config.memory_max_sessions,
        ids=ids,
    )


async def _histories(config: ServeConfig, backing: HistoryStore | None, metrics: ServiceMetrics) -> Histories:
    """The user histories of this worker: the store behind the session store's guard and timeouts."""
    grace = (config.session_secret_previous,) if config.session_secret_previous else ()
    host_grace = (config.history_secret_previous,) if config.history_secret_previous else ()
    keys = UserKeys(
        config.history_secret or None,
        config.session_secret or None,
        host_grace=host_grace,
        server_grace=grace,
    )
    refused = metrics.user_keys_refused.inc
    if not config.history_enabled:
        return Histories(None, keys, config, on_refused=refused)
    backing = backing if backing is not None else _default_history_store(config)
    in_process = isinstance(backing, MemoryHistoryStore)
    store = GuardedHistoryStore(backing, **_guard_options(config, metrics, in_process))
    if not await store.ping():
        logger.warning("the history store does not answer; serving without history until it does")
    return Histories(store, keys, config, on_refused=refused)


def _default_history_store(config: ServeConfig) -> HistoryStore:
    ttl = config.history_ttl_days * 86400
    if config.redis_url:
        return RedisHistoryStore(
            config.redis_url,
            prefix=config.redis_prefix,
            max_queries=config.history_max_queries,
            ttl_seconds=ttl,
            **_redis_options(config),
        )
    return MemoryHistoryStore(
        max_queries=config.history_max_queries, max_users=config.history_max_users, ttl_seconds=ttl
    )


# ---------------------------------------------------------------- routes


async def index(request: Request) -> Response:
    page = STATIC_DIR / "index.html"
    return FileResponse(page) if page.is_file() else HTMLResponse(_PLACEHOLDER)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    service: Service = request.state.service
    if not service.ready:
        return JSONResponse({"status": "starting or stopping"}, status_code=503)
    store = "ok" if service.sessions.healthy else "degraded"
    info = service.model.current.info
    body = {"status": "ready", "model": info["kind"], "model_id": info["id"], "labels": info["labels"]}
    histories = service.histories.store
    history = "off" if histories is None else "ok" if histories.healthy else "degraded"
    body.update(trained_at=info["trained_at"], session_store=store, history_store=history)
    return JSONResponse(body)


async def metrics_endpoint(request: Request) -> Response:
    """With ``serve.metrics_token`` set, only for ``Authorization: Bearer <token>``; without one,
    only for clients on this machine (a peer on the loopback, not through a proxy)."""
    service: Service = request.state.service
    token = service.config.metrics_token
    if token:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "send Authorization: Bearer <serve.metrics_token>",
                headers={"WWW-Authenticate": "Bearer"},
            )
    else:
        peer = request.client.host if request.client else None
        if not is_loopback(peer) or "x-forwarded-for" in request.headers:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                "/metrics is served to this machine only unless serve.metrics_token is set",
            )
    return Response(service.metrics.render(), media_type=CONTENT_TYPE)


def _requested(request: Request, service: Service, body: object = None) -> tuple[str | None, bool]:
    """The session id a request asks for and whether it is the cookie's: the
    ``X-Autocomplete-Session`` header (the widget's), the body's or ``?session=`` (other clients),
    else the cookie. Only a fresh session or the cookie's own ever sets the cookie."""
    for value in (request.headers.get(SESSION_HEADER), body, request.query_params.get("session")):
        if isinstance(value, str) and value:
            return value, False
    cookie = request.cookies.get(service.config.cookie_name)
    return cookie, cookie is not None


def _identity(
    request: Request, service: Service, body: dict[str, Any] | None = None, *, issue: bool = False
) -> Identity:
    """Whose history a request reads and writes: the ``X-Autocomplete-User`` header (the
    widget's), ``?user=`` (or a submit body's ``user``), else the browser-id cookie; nobody with
    ``history=false`` (parameter, or a submit body's ``"history": false``)."""
    params = request.query_params
    signed = request.headers.get(USER_HEADER) or params.get("user")
    if not signed and body is not None and isinstance(body.get("user"), str):
        signed = body["user"]
    wanted = params.get("history", "").lower() not in HISTORY_OFF
    if body is not None and body.get("history") is False:
        wanted = False
    cookie = request.cookies.get(service.config.history_cookie_name)
    return service.histories.identify(signed, cookie, wanted, issue=issue)


def _respond(
    service: Service,
    body: dict[str, Any],
    session: str | None,
    requested: str | None,
    from_cookie: bool,
    identity: Identity | None = None,
) -> Response:
    response = JSONResponse(body)
    if session is not None and (session != requested or from_cookie):
        set_session_cookie(response, service.config, session)
    if identity is not None and identity.cookie is not None:
        set_browser_cookie(response, service.config, identity.cookie)
    return response


async def complete_endpoint(request: Request) -> Response:
    """``GET /v1/complete?q=...&k=...&session=...``: one input, answered like the websocket does."""
    service: Service = request.state.service
    params = request.query_params
    if "q" not in params:
        raise ProtocolError("bad_field", 'the query parameter "q" (the typed text) is required')
    text = protocol.check_text(params["q"], "q", service.limits.max_prefix_chars)
    k = None
    if "k" in params:
        try:
            k = protocol.check_k(int(params["k"]), service.limits.max_k)
        except ValueError:
            raise ProtocolError(
                "bad_field", f'"k" must be a whole number from 1 to {service.limits.max_k}'
            ) from None
    service.metrics.inputs.labels("http").inc()
    requested, from_cookie = _requested(request, service)
    session = await service.sessions.resume(requested) if requested else None
    previous = await service.sessions.previous(session, service.config.context_queries) if session else []
    identity = _identity(request, service)
    history = await service.histories.entries(identity.user)
    found, ms = service.complete(text, previous, k, history)
    body = protocol.completions(None, text, found, ms)
    body["session"] = session
    return _respond(service, body, session, requested, from_cookie, identity)


async def submit_endpoint(request: Request) -> Response:
    """``POST /v1/submit`` with ``{"session": ID, "text": "..."}`` (session optional)."""
    service: Service = request.state.service
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send the body as application/json")
    raw = await request.body()  # at most max_frame_bytes (BodyLimit answers a JSON 413 past it)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise ProtocolError("bad_json", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_frame", 'the body must be a JSON object {"session": ..., "text": ...}')
    text = protocol.check_query(data.get("text"), service.limits.max_query_chars)
    requested, from_cookie = _requested(request, service, data.get("session"))
    session = await service.sessions.resume(requested)
    service.metrics.submits.labels("http").inc()
    key = protocol.check_idempotency_key(data.get("idempotency_key"))
    rank = protocol.check_rank(data.get("rank"), service.limits.max_k)
    if rank is not None:
        service.metrics.chosen_rank.observe(rank)
    if "history" in data and not isinstance(data["history"], bool):
        raise ProtocolError("bad_field", '"history" must be true or false')
    if "user" in data and not isinstance(data["user"], str):
        raise ProtocolError("bad_field", '"user" must be a signed user key (a string)')
    query = service.normalize_query(text)
    identity = _identity(request, service, data, issue=True)
    submit, _ = await asyncio.gather(
        service.sessions.record(session, query, key), service.histories.record(identity.user, query, key)
    )
    service.count_live(session, query, submit)
    if submit.stored is True:
        service.prepare(query)
    body = protocol.submitted(text, submit.stored)
    body["session"] = session
    return _respond(service, body, session, requested, from_cookie, identity)


async def session_endpoint(request: Request) -> Response:
    """``GET /v1/session``: the caller's own session (cookie or ``?session=``) and its recent queries."""
    service: Service = request.state.service
    requested, from_cookie = _requested(request, service)
    session = await service.sessions.resume(requested)
    # a page load, not a keystroke: the store may take as long as for a resume
    timeout = service.sessions.write_timeout
    previous = await service.sessions.previous(session, service.config.history_length, timeout=timeout)
    return _respond(service, {"session": session, "previous": previous}, session, requested, from_cookie)


async def history_endpoint(request: Request) -> Response:
    """``GET /v1/history?k=``: the caller's recent searches, most recent first; ``DELETE
    /v1/history[?query=...]``: forget one query, or all of them, at once."""
    service: Service = request.state.service
    identity = _identity(request, service)
    params = request.query_params
    if request.method == "DELETE":
        query = None
        if "query" in params:
            checked = protocol.check_query(params["query"], service.limits.max_query_chars)
            query = service.normalize_query(checked)
        service.metrics.history_forgotten.labels("all" if query is None else "query").inc()
        done = await service.histories.forget(identity.user, query)
        body = protocol.forgotten(None, params.get("query"), done)
        return _respond(service, body, None, None, False, identity)
    k = service.config.k
    if "k" in params:
        try:
            k = protocol.check_k(int(params["k"]), service.limits.max_k)
        except ValueError:
            raise ProtocolError(
                "bad_field", f'"k" must be a whole number from 1 to {service.limits.max_k}'
            ) from None
    recent: list[str] = []
    if identity.user is not None:
        # a page load, not a keystroke: the store may take as long as for a write
        timeout = service.histories.store.write_timeout if service.histories.store else None
        found = await service.histories.read(identity.user, k, timeout=timeout)
        recent = [entry.query for entry in found or ()]
    return _respond(service, protocol.recent(None, recent), None, None, False, identity)


async def websocket_endpoint(websocket: WebSocket) -> None:
    await serve_connection(websocket, websocket.state.service)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        413: "too_big",
        415: "unsupported_media_type",
    }
    body = protocol.error(code.get(exc.status_code, "http_error"), str(exc.detail))
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _protocol_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProtocolError)
    service: Service | None = getattr(request.state, "service", None)
    if service is not None:
        service.metrics.errors.labels(exc.code).inc()
    return JSONResponse(protocol.error(exc.code, exc.message), status_code=status.HTTP_400_BAD_REQUEST)


# ---------------------------------------------------------------- running


class _RedactQueryStrings(logging.Filter):
    """uvicorn logs request paths with their query strings (session ids, typed text): cut them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                arg.split("?", 1)[0] if isinstance(arg, str) and arg.startswith("/") else arg
                for arg in record.args
            )
        return True


def _redact_uvicorn_logs() -> None:
    for name in ("uvicorn.access", "uvicorn.error"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _RedactQueryStrings) for f in log.filters):
            log.addFilter(_RedactQueryStrings())


def nameless_background_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The event loop's handler of errors no code awaited (a background task's, a callback's):
    logged by the exception's type only. asyncio's own report prints the exception's message, its
    traceback and the task or callback with its arguments, which can hold a query or a user key."""
    exc = context.get("exception")
    logger.error("an error no code awaited: %s", type(exc).__name__ if exc is not None else "no exception")


def app_from_environment() -> Starlette:
    """The uvicorn factory: model folder and config path from the environment ``run`` prepared."""
    model = os.environ.get(MODEL_ENV)
    if not model:
        raise RuntimeError(f"set {MODEL_ENV} to a model folder (autocomplete serve --model DIR does it)")
    if threading.current_thread() is threading.main_thread():
        # a SIGHUP before the lifespan handles it (the model is loading) would end the worker; the
        # folder being loaded is the one the path names now, so there is nothing to reload yet
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return create_app(model, load_serve_config(os.environ.get(CONFIG_ENV) or None))


def run(model: str, config: str | None, host: str, port: int, redis_url: str | None, workers: int) -> None:
    """Serve ``model`` with uvicorn; ``workers`` > 1 processes share the memory-mapped model."""
    import uvicorn

    if not (Path(model) / "params.json").is_file():
        raise FileNotFoundError(
            f"{model} is not a model folder (no params.json); build one with autocomplete train"
        )
    # as given, not resolved: a `current` symlink swapped later is followed by every worker
    os.environ[MODEL_ENV] = os.path.abspath(model)
    if config:
        os.environ[CONFIG_ENV] = str(Path(config).resolve())
    if redis_url:
        os.environ["AUTOCOMPLETE_REDIS_URL"] = redis_url
    settings = load_serve_config(config)  # fail here, loudly, before any worker starts
    if not settings.session_secret:
        # one key for all workers of this run, handed to them through the environment
        os.environ[SECRET_ENV] = secrets.token_urlsafe(32)
        logger.warning(
            "no serve.session_secret (%s): session ids are signed with a key made for this run; "
            "sessions end when the server restarts, and servers sharing a Redis must set the same "
            "secret",
            SECRET_ENV,
        )
    if host not in ("127.0.0.1", "localhost", "::1") and "*" not in settings.allowed_hosts:
        logger.warning(
            "serving on %s: requests whose Host is not in serve.allowed_hosts %s are refused (400); "
            "list the names clients use",
            host,
            list(settings.allowed_hosts),
        )
    _raise_open_files_limit(settings.max_connections)
    if workers > 1:
        if not settings.redis_url:
            logger.warning(
                "%d workers with in-memory sessions: each worker keeps its own; use --redis-url", workers
            )
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="autocomplete-metrics-"))
    from autocomplete.transport import LimitedHttpProtocol, LimitedWebSocketProtocol

    server_config = uvicorn.Config(
        "autocomplete.server:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # frames up to max_frame_bytes are answered; larger ones up to 4x get the frame_too_big
        # error frame before the 1009 close, larger still are closed 1009 by the implementation
        ws_max_size=4 * settings.max_frame_bytes,
        # HTTP beyond this is answered 503 by uvicorn; the headroom keeps /healthz, /readyz and
        # /metrics answering while the websockets are at serve.max_connections
        limit_concurrency=settings.max_connections + 64,
        timeout_keep_alive=settings.keep_alive_seconds,  # type: ignore[arg-type]
        # the fastest implementations (uvicorn[standard]); compressing frames of a few hundred bytes
        # costs more CPU than it saves bytes
        loop="uvloop",
        # uvicorn's httptools and websockets-sansio protocols, with the bounds of transport.py
        http=LimitedHttpProtocol,
        ws=LimitedWebSocketProtocol,
        ws_per_message_deflate=False,
        log_level=settings.log_level,
        server_header=False,
    )
    serve_with_workers(server_config)  # SIGHUP reloads every worker (autocomplete.workers)


def _raise_open_files_limit(max_connections: int) -> None:
    """Let a worker hold ``max_connections`` sockets: raise the soft open-files limit up to the hard one."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max_connections + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < want:
            logger.warning(
                "open files limited to %d: fewer than serve.max_connections (%d) + 256", new, max_connections
            )
