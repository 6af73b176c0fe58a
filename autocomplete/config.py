"""The serving configuration: the ``[serve]`` table of ``configs/*.toml``, then environment variables.

The offline stages' tables are read by :mod:`indexer.config`; this module reads only ``[serve]``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from indexer.config import read_toml
from indexer.params import ConfigError, coerce_section
from sessions.connect import cluster_nodes, is_cluster_url


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """``autocomplete serve``: the ``[serve]`` table, then ``AUTOCOMPLETE_<KEY>`` environment variables.

    Sessions live in Redis when ``redis_url`` is set (``redis+cluster://``: a Redis Cluster), in
    process memory otherwise. A session store
    read on the keystroke path is bounded by ``store_timeout_seconds``, a resume or a write by
    ``store_write_timeout_seconds``; after a failure the store is skipped for
    ``store_retry_seconds`` (inputs are answered without context) and then tried again. Session ids
    are signed with ``session_secret`` (``session_secret_previous`` is still accepted, for a
    rotation). Every resource one client can hold is bounded (docs/protocol.md, "Limits").
    With ``live``, stored submits feed live counts and labels (``autocomplete.livefeed``), in the
    same Redis (or process memory), read by each worker every ``live_refresh_seconds``.
    """

    k: int = 10
    max_k: int = 20
    context_queries: int = 1
    context_refresh_seconds: float = 1.0
    history_length: int = 10
    session_ttl_seconds: int = 1800
    memory_max_sessions: int = 100_000
    redis_url: str = ""
    redis_prefix: str = "autocomplete:"
    redis_socket_timeout: float = 0.5
    redis_connect_timeout: float = 0.05
    redis_max_connections: int = 64
    redis_retries: int = 1
    store_timeout_seconds: float = 0.02
    store_retry_seconds: float = 1.0
    store_log_interval_seconds: float = 60.0
    redis_pool_timeout: float = 0.5
    store_write_timeout_seconds: float = 1.0
    outbox_size: int = 10_000
    outbox_max_age_seconds: float = 60.0
    session_secret: str = ""
    session_secret_previous: str = ""
    allowed_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
    trusted_proxies: tuple[str, ...] = ()
    metrics_token: str = ""
    max_frame_bytes: int = 4096
    max_prefix_chars: int = 100
    max_query_chars: int = 200
    max_inputs_per_second: float = 40.0
    max_inputs_per_second_per_ip: float = 200.0
    max_connections: int = 1000
    max_connections_per_ip: int = 100
    max_header_bytes: int = 16384
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 10.0
    keep_alive_seconds: float = 5.0
    handshake_timeout_seconds: float = 10.0
    max_outgoing_bytes: int = 262_144
    send_timeout_seconds: float = 10.0
    idle_timeout_seconds: float = 300.0
    cookie_name: str = "ac_session"
    cookie_secure: bool = False
    log_level: str = "info"
    model_snapshot_dir: str = ""
    search_url: str = ""
    history_enabled: bool = True
    history_secret: str = ""
    history_secret_previous: str = ""
    history_max_queries: int = 200
    history_ttl_days: int = 90
    history_max_users: int = 100_000
    history_refresh_seconds: float = 60.0
    history_cookie_name: str = "ac_user"
    history_cookie_max_age_days: int = 365
    admin_token: str = ""
    reload_poll_seconds: float = 1.0
    blocklist: str = ""
    blocklist_max_bytes: int = 1_048_576
    live: bool = True
    live_refresh_seconds: float = 1.0
    live_max_queries: int = 50_000
    live_sessions_cap: int = 32
    live_log_size: int = 100_000

    def __post_init__(self) -> None:
        positive = (
            "k",
            "max_k",
            "history_length",
            "session_ttl_seconds",
            "memory_max_sessions",
            "redis_max_connections",
            "max_frame_bytes",
            "max_prefix_chars",
            "max_query_chars",
            "max_inputs_per_second",
            "idle_timeout_seconds",
            "store_timeout_seconds",
            "store_write_timeout_seconds",
            "redis_pool_timeout",
            "outbox_size",
            "outbox_max_age_seconds",
            "max_inputs_per_second_per_ip",
            "max_connections",
            "max_connections_per_ip",
            "max_header_bytes",
            "header_timeout_seconds",
            "body_timeout_seconds",
            "keep_alive_seconds",
            "handshake_timeout_seconds",
            "max_outgoing_bytes",
            "send_timeout_seconds",
            "history_max_queries",
            "history_ttl_days",
            "history_max_users",
            "history_cookie_max_age_days",
            "blocklist_max_bytes",
            "live_refresh_seconds",
            "live_max_queries",
            "live_sessions_cap",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"serve.{name} must be positive, got {getattr(self, name)!r}")
        if self.live_log_size < 0:
            raise ConfigError(
                f"serve.live_log_size must be 0 (keep no log) or more, got {self.live_log_size!r}"
            )
        if self.context_refresh_seconds < 0:
            raise ConfigError(
                f"serve.context_refresh_seconds must be 0 (read every input) or more, got "
                f"{self.context_refresh_seconds!r}"
            )
        if not 0 <= self.context_queries <= self.history_length:
            raise ConfigError(
                f"serve.context_queries must be between 0 and history_length ({self.history_length}),"
                f" got {self.context_queries}"
            )
        if self.k > self.max_k:
            raise ConfigError(f"serve.k ({self.k}) must not exceed serve.max_k ({self.max_k})")
        if self.history_refresh_seconds < 0:
            raise ConfigError(
                f"serve.history_refresh_seconds must be 0 (read every input) or more, got "
                f"{self.history_refresh_seconds!r}"
            )
        if self.history_cookie_name == self.cookie_name or not self.history_cookie_name:
            raise ConfigError(
                f"serve.history_cookie_name must be set and differ from serve.cookie_name "
                f"({self.cookie_name!r})"
            )
        if self.reload_poll_seconds < 0:
            raise ConfigError(
                f"serve.reload_poll_seconds must be 0 (no polling: SIGHUP and POST /admin/reload only) "
                f"or more, got {self.reload_poll_seconds!r}"
            )
        secrets = ("session_secret", "session_secret_previous", "history_secret", "history_secret_previous")
        for name in (*secrets, "admin_token"):
            value = getattr(self, name)
            if value and len(value) < 16:
                raise ConfigError(
                    f"serve.{name} needs at least 16 characters (got {len(value)}); make one with "
                    "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ConfigError(
                    f"serve.trusted_proxies: {proxy!r} is not an IP address or network (e.g. 10.0.0.0/8)"
                ) from None
        if is_cluster_url(self.redis_url):
            try:
                cluster_nodes(self.redis_url)
            except ValueError as exc:
                raise ConfigError(f"serve.redis_url: {exc}") from None
        if "{" in self.redis_prefix or "}" in self.redis_prefix:
            raise ConfigError(
                f"serve.redis_prefix must not contain braces, got {self.redis_prefix!r}: on a Redis Cluster "
                "the braces of a key choose its hash slot, and the session id's do (docs/deployment.md)"
            )
        if not self.allowed_hosts:
            raise ConfigError('serve.allowed_hosts must not be empty; ["*"] allows any Host header')
        for pattern in self.allowed_hosts:
            wildcard = pattern.startswith("*") and pattern != "*"
            if "*" in pattern[1:] or (wildcard and not pattern.startswith("*.")):
                raise ConfigError(
                    f"serve.allowed_hosts: {pattern!r} is not a host name; a wildcard is '*' (any) "
                    "or like '*.example.com' (its subdomains)"
                )
        if self.log_level not in ("critical", "error", "warning", "info", "debug"):
            raise ConfigError(
                f"serve.log_level must be one of critical/error/warning/info/debug, got {self.log_level!r}"
            )
        if self.search_url and "{searchTerms}" not in self.search_url:
            raise ConfigError(
                f"serve.search_url must be a URL template with {{searchTerms}} where the query goes "
                f"(https://example.com/search?q={{searchTerms}}), got {self.search_url!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The settings, secrets shown only as set or not (safe to print or log)."""
        values = dataclasses.asdict(self)
        secrets = ("session_secret", "session_secret_previous", "history_secret", "history_secret_previous")
        for name in (*secrets, "metrics_token", "admin_token"):
            values[name] = "(set)" if values[name] else ""
        return values


SERVE_ENV_PREFIX = "AUTOCOMPLETE_"


def load_serve_config(
    path: str | Path | None,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> ServeConfig:
    """The ``[serve]`` table of ``path`` (other tables are ignored), ``serve.key=value`` overrides,
    then ``AUTOCOMPLETE_<KEY>`` environment variables (``AUTOCOMPLETE_REDIS_URL=...``; lists are
    comma-separated). Unknown keys and malformed values raise :class:`ConfigError`."""
    section = dict(read_toml(path, overrides).get("serve", {}))
    fields = {f.name: f for f in dataclasses.fields(ServeConfig)}
    defaults = ServeConfig()
    values = coerce_section(ServeConfig, section, "serve")
    env = os.environ if environ is None else environ
    for key in fields:
        name = SERVE_ENV_PREFIX + key.upper()
        if name in env:
            values[key] = _parse_env(env[name], getattr(defaults, key), name)
    return ServeConfig(**values)


def _parse_env(text: str, default: Any, name: str) -> Any:
    text = text.strip()
    try:
        if isinstance(default, tuple):
            return tuple(part.strip() for part in text.split(",") if part.strip())
        if isinstance(default, bool):
            lowered = text.lower()
            if lowered not in ("1", "true", "yes", "0", "false", "no"):
                raise ValueError(text)
            return lowered in ("1", "true", "yes")
        if isinstance(default, float):
            return float(text)
        if isinstance(default, int):
            return int(text)
    except ValueError as exc:
        raise ConfigError(
            f"environment variable {name}={text!r} is not a valid {type(default).__name__}"
        ) from exc
    return text
