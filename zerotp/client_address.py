"""Who is asking: the one client address every per-address limit counts by.

A client-sent `X-Forwarded-For` is whatever the client says it is, so it is read only when
the request came from a proxy named in TRUSTED_PROXIES, and then from the right: each
trusted proxy appends the address it got the request from, so the first address from the
right that is not a trusted proxy is the client's, and anything left of it may be forged.
"""

import ipaddress
from collections.abc import Sequence

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def trusted_proxies(value: str) -> tuple[Network, ...]:
    """`10.0.0.2, 10.1.0.0/16, fd00::/8` -> networks; ValueError for anything else."""
    if not value.strip():
        return ()
    networks = []
    for item in value.split(","):
        try:
            networks.append(ipaddress.ip_network(item.strip()))
        except ValueError as exc:
            raise ValueError(f"{item.strip()!r} is not an address or CIDR ({exc})") from None
    return tuple(networks)


def _address(text: str) -> Address | None:
    """An address as proxies write it (`1.2.3.4`, `1.2.3.4:80`, `[::1]:80`, `::1`)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address in network for network in proxies)


def client_address(request: HttpRequest) -> str:
    """REMOTE_ADDR, or behind trusted proxies the first untrusted hop of X-Forwarded-For
    from the right (the farthest trusted proxy if every hop is one, or if the next hop is
    not an address at all)."""
    remote = request.META.get("REMOTE_ADDR") or ""
    proxies = settings.TRUSTED_PROXIES
    nearest = _address(remote)
    if nearest is None:
        return remote or "unknown"
    if not _trusted(nearest, proxies):
        return str(nearest)
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    for hop in reversed(hops):
        if not hop.strip():
            continue
        address = _address(hop)
        if address is None:
            break
        nearest = address
        if not _trusted(address, proxies):
            break
    return str(nearest)
