"""What one client may hold: connections per worker and per address, frames per second.

The client's address is the TCP peer's, unless that peer is one of ``serve.trusted_proxies``: then
it is the right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy (the left-most
entries are whatever the client chose to send). Counters live in one :class:`ClientLimits` per
worker, built in the app's lifespan.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Iterable, Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TokenBucket:
    """``rate`` tokens per second, bursts of up to ``rate`` tokens."""

    __slots__ = ("rate", "tokens", "stamp")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.stamp = time.monotonic()

    def take(self, now: float) -> bool:
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def wait(self, now: float) -> float:
        """Seconds until a token is there (0 if one is)."""
        missing = 1.0 - min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        return max(0.0, missing / self.rate)


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def _in(address: str, networks: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[IPNetwork]) -> str:
    """The client's address: the peer's, or through trusted proxies the last untrusted hop."""
    peer = peer or "unknown"
    if not trusted or forwarded_for is None or not _in(peer, trusted):
        return peer
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        if hop and not _in(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a malformed entry: the proxy's own address, counted as one client
    return peer


def is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class ClientLimits:
    """Open connections per worker and per address, and a frame budget per address."""

    def __init__(
        self,
        *,
        max_connections: int,
        max_per_address: int,
        inputs_per_second_per_address: float,
        trusted_proxies: Iterable[str] = (),
    ) -> None:
        self.max_connections = max_connections
        self.max_per_address = max_per_address
        self.rate_per_address = inputs_per_second_per_address
        self.trusted = parse_networks(trusted_proxies)
        self.open = 0
        self._per_address: dict[str, int] = {}
        self._buckets: dict[str, tuple[TokenBucket, TokenBucket]] = {}  # inputs, refusals
        self._gates: dict[str, asyncio.Lock] = {}
        # TCP connections per peer (trusted proxies not counted), before any request is read
        self._peers: dict[str, int] = {}

    def address(self, peer: str | None, forwarded_for: str | None) -> str:
        return client_address(peer, forwarded_for, self.trusted)

    def acquire(self, address: str) -> str | None:
        """Count a new websocket of ``address``; the reason it is refused, or ``None``."""
        if self.open >= self.max_connections:
            return "too many connections on this server; try again later"
        held = self._per_address.get(address, 0)
        if held >= self.max_per_address:
            return "too many connections from your address; try again later"
        self.open += 1
        self._per_address[address] = held + 1
        if held == 0:
            self._buckets[address] = self._new_buckets()
        return None

    def _new_buckets(self) -> tuple[TokenBucket, TokenBucket]:
        return TokenBucket(self.rate_per_address), TokenBucket(self.rate_per_address)

    def release(self, address: str) -> None:
        self.open -= 1
        held = self._per_address.get(address, 1) - 1
        if held <= 0:
            self._per_address.pop(address, None)
            self._buckets.pop(address, None)
            self._gates.pop(address, None)
        else:
            self._per_address[address] = held

    def buckets(self, address: str) -> tuple[TokenBucket, TokenBucket]:
        """The frame budget of ``address``: frames answered, and frames refused ``rate_limited``."""
        buckets = self._buckets.get(address)
        if buckets is None:  # not counted (cannot happen while one of its connections is open)
            buckets = self._buckets[address] = self._new_buckets()
        return buckets

    def gate(self, address: str) -> asyncio.Lock:
        """Held by the one connection of ``address`` that waits for its budget: the others queue
        behind it instead of all waking at every new token."""
        gate = self._gates.get(address)
        if gate is None:
            gate = self._gates[address] = asyncio.Lock()
        return gate

    def acquire_peer(self, peer: str | None) -> bool:
        """Count a TCP connection of ``peer``; ``False`` when it holds too many already."""
        if peer is None or _in(peer, self.trusted):
            return True
        held = self._peers.get(peer, 0)
        if held >= self.max_per_address:
            return False
        self._peers[peer] = held + 1
        return True

    def release_peer(self, peer: str | None) -> None:
        if peer is None or peer not in self._peers:
            return
        held = self._peers[peer] - 1
        if held <= 0:
            del self._peers[peer]
        else:
            self._peers[peer] = held
