"""The redis-py client a URL asks for: one Redis behind a blocking pool, or a Redis Cluster.

``redis://`` and ``rediss://`` (TLS) URLs are redis-py's own: one server, one
``BlockingConnectionPool`` (a call waits up to ``pool_timeout`` for a free connection).
``redis+cluster://[user:password@]host:port,host:port,...[?option=value...]`` (``rediss+cluster://``
for TLS) is a Redis Cluster served by redis-py's asyncio ``RedisCluster``: the listed nodes are
where it first asks for the slot map (list several, so a start does not depend on one node), the
options are redis-py's URL options, and there is no database number (a cluster has only db 0).
redis-py keeps up to ``max_connections`` connections per node and fails a call at once when they
are all busy; :class:`RedisClient` makes such a call wait up to ``pool_timeout`` for one of
``max_connections`` in all instead, as the pool does for a single server.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import MaxConnectionsError

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
_NODE = re.compile(r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]/?#@]+)):(?P<port>\d{1,5})")
_EXAMPLE = "redis+cluster://10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379"


def is_cluster_url(url: str) -> bool:
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def cluster_nodes(url: str) -> tuple[list[tuple[str, int]], dict]:
    """The startup nodes of a ``redis+cluster://`` URL and the connection options (user,
    password, TLS, query options) shared by all nodes. Raises ``ValueError`` for a malformed
    URL; the message never repeats the URL's user or password."""
    parts = urlsplit(url)
    scheme = CLUSTER_SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ValueError(
            f"a Redis Cluster URL starts with redis+cluster:// (rediss+cluster:// for TLS): {_EXAMPLE}"
        )
    userinfo, _, hosts = parts.netloc.rpartition("@")
    nodes = []
    for node in hosts.split(","):
        found = _NODE.fullmatch(node.strip())
        if found is None or not 0 < int(found["port"]) < 65536:
            raise ValueError(
                f"Redis Cluster URL: {node.strip()!r} is not HOST:PORT; list the nodes as {_EXAMPLE}"
            )
        nodes.append((found["ipv6"] or found["host"], int(found["port"])))
    if parts.path.strip("/") not in ("", "0"):
        raise ValueError("a Redis Cluster has only database 0: drop the /DB of the Redis Cluster URL")
    shared = f"{scheme}://{userinfo + '@' if userinfo else ''}{nodes[0][0]}:{nodes[0][1]}"
    options = dict(parse_url(shared + (f"?{parts.query}" if parts.query else "")))
    for key in ("host", "port", "db", "path"):
        options.pop(key, None)
    if options.pop("connection_class", None) is not None and scheme == "rediss":
        options["ssl"] = True
    return nodes, options


class RedisClient:
    """``redis``: the client commands go to; ``async with connection():`` around each call
    bounds how long it waits for a connection; ``aclose()`` at shutdown."""

    def __init__(
        self,
        url: str,
        *,
        socket_timeout: float,
        connect_timeout: float,
        max_connections: int,
        pool_timeout: float,
        retries: int,
    ) -> None:
        common = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            "max_connections": max_connections,
            "decode_responses": True,
        }
        self.cluster = is_cluster_url(url)
        self.pool_timeout = pool_timeout
        self._pool: BlockingConnectionPool | None = None
        self._free: asyncio.Semaphore | None = None
        self.redis: Redis | RedisCluster
        if self.cluster:
            nodes, options = cluster_nodes(url)
            self._free = asyncio.Semaphore(max_connections)
            self.redis = RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in nodes],
                # serve the slots whose masters answer while another master is down
                require_full_coverage=False,
                retry=Retry(NoBackoff(), retries),
                **(common | options),  # the URL's options win, as in redis-py's from_url
            )
        else:
            self._pool = BlockingConnectionPool.from_url(
                url, timeout=pool_timeout, retry=Retry(NoBackoff(), retries), **common
            )
            self.redis = Redis(connection_pool=self._pool)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[None]:
        if self._free is None:  # the blocking pool waits by itself
            yield
            return
        try:
            async with asyncio.timeout(self.pool_timeout):
                await self._free.acquire()
        except TimeoutError:
            raise MaxConnectionsError("No connection available.") from None
        try:
            yield
        finally:
            self._free.release()

    async def aclose(self) -> None:
        await self.redis.aclose()
        if self._pool is not None:
            await self._pool.aclose()
