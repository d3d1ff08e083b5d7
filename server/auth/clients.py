"""Who the client is, for every limit kept per client."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from litestar.connection import ASGIConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def _networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(t, strict=False) for t in trusted)


def _is_trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(connection: ASGIConnection[Any, Any, Any, Any], trusted_proxies: tuple[str, ...]) -> str:
    """The TCP peer, unless the peer is a configured proxy (HOSO_TRUSTED_PROXIES): then the
    nearest address in X-Forwarded-For that is not itself a trusted proxy. A header from
    anyone else is ignored, so a client cannot start a fresh count by sending a new one."""
    peer = connection.client.host if connection.client else "unknown"
    networks = _networks(trusted_proxies)
    if not networks or not _is_trusted(peer, networks):
        return peer
    hops = [h.strip() for h in ",".join(connection.headers.getall("x-forwarded-for", [])).split(",")]
    for hop in reversed([h for h in hops if h]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a garbled header: the proxy itself is the best we know
        if not _is_trusted(hop, networks):
            return hop
    return peer
