"""Client limits: the client's address behind trusted proxies, per-address counts and budgets."""

from __future__ import annotations

import pytest

from autocomplete.limits import ClientLimits, TokenBucket, client_address, parse_networks

PROXIES = parse_networks(["10.0.0.0/8", "192.0.2.7"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.5", None, "203.0.113.5"),
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # not from a trusted proxy: ignored
        ("10.1.2.3", "198.51.100.1", "198.51.100.1"),
        ("10.1.2.3", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the left-most is the client's own claim
        ("10.1.2.3", "198.51.100.1, 192.0.2.7", "198.51.100.1"),  # through two proxies of ours
        ("10.1.2.3", "10.9.9.9", "10.1.2.3"),  # only proxies: the proxy itself
        ("10.1.2.3", "not-an-address", "10.1.2.3"),
    ],
)
def test_the_client_address_is_the_last_hop_no_trusted_proxy_added(
    peer: str, forwarded: str | None, client: str
) -> None:
    assert client_address(peer, forwarded, PROXIES) == client


def test_connections_are_counted_per_address_and_per_worker() -> None:
    limits = ClientLimits(max_connections=3, max_per_address=2, inputs_per_second_per_address=10)
    assert limits.acquire("a") is None and limits.acquire("a") is None
    assert "your address" in (limits.acquire("a") or "")
    assert limits.acquire("b") is None
    assert "this server" in (limits.acquire("c") or "")
    limits.release("a")
    assert limits.acquire("c") is None
    assert limits.acquire_peer("198.51.100.1") and limits.acquire_peer("198.51.100.1")
    assert not limits.acquire_peer("198.51.100.1")
    limits.release_peer("198.51.100.1")
    assert limits.acquire_peer("198.51.100.1")


def test_the_frame_budget_of_an_address_is_shared_by_its_connections() -> None:
    limits = ClientLimits(max_connections=10, max_per_address=10, inputs_per_second_per_address=5)
    limits.acquire("a")
    limits.acquire("a")
    first, _ = limits.buckets("a")  # as the first connection holds it
    first.stamp = 0.0
    assert sum(first.take(0.0) for _ in range(20)) == 5
    second, _ = limits.buckets("a")  # the second connection: the same budget, spent
    assert not second.take(0.0)
    limits.release("a")
    limits.release("a")
    assert limits.buckets("a")[0] is not first  # all gone: a new client starts afresh


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(10)
    bucket.stamp = 0.0
    assert sum(bucket.take(0.0) for _ in range(20)) == 10
    assert bucket.wait(0.0) == pytest.approx(0.1)
    assert bucket.take(0.1) and not bucket.take(0.1)
