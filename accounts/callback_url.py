"""Which callback URLs ZeroTP will post to: http(s), a host, and a public address.

Checked when the URL is saved and again before every send (DNS can change in between).
"""

import ipaddress
import socket
from urllib.parse import urlsplit

# Ranges Python's ipaddress calls global (in some or all of its versions) that no callback
# should reach (much as requests-hardened's own list).
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(net)
    for net in (
        "100.64.0.0/10",  # carrier-grade NAT
        "192.0.0.0/24",  # IETF protocol assignments
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated, RFC 7526)
        "2002::/16",  # 6to4, whatever IPv4 address it wraps
        "64:ff9b::/96",  # NAT64, which reaches IPv4 addresses of the gateway's choosing
        "64:ff9b:1::/48",
        "2001:20::/28",  # ORCHIDv2
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing
        "fec0::/10",  # site-local (deprecated)
    )
)
# CALLBACK_ALLOW_PRIVATE opens these, besides loopback: RFC 1918 and unique local addresses.
_PRIVATE = tuple(
    ipaddress.ip_network(net)
    for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
# Cloud metadata services (AWS's IPv6 one is inside the unique local range).
_METADATA = (ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"))


class CallbackUrlError(ValueError):
    pass


def address_allowed(address: str, *, allow_private: bool) -> bool:
    """Whether a callback may be sent to this address: a public one; with allow_private
    (local development) also loopback and private ones, but never link-local, metadata,
    multicast, unspecified or reserved ones. The one rule of the save-time check and of the
    connection itself (`orders.callbacks`)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in _METADATA or ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return False
    if allow_private and (ip.is_loopback or any(ip in net for net in _PRIVATE)):
        return True
    if ip.is_reserved or any(ip in net for net in _NOT_PUBLIC):
        return False
    return ip.is_global


def resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to (the seam the SSRF tests replace)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def allowed_address(host: str, port: int, *, allow_private: bool) -> str | None:
    """The address to connect to for the host: the first it resolves to, if every one it
    resolves to is allowed; None if any is not. OSError if it does not resolve."""
    addresses = resolve(host, port)
    if not addresses or not all(address_allowed(a, allow_private=allow_private) for a in addresses):
        return None
    return addresses[0]


def check_callback_url(url: str, *, allow_private: bool) -> str:
    """The URL, cleaned, or CallbackUrlError saying why it is refused."""
    url = url.strip()
    if len(url) > 2000:
        raise CallbackUrlError("The callback URL is longer than 2000 characters.")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise CallbackUrlError(f"The callback URL is not valid: {exc}.") from None
    if parts.scheme not in ("http", "https"):
        raise CallbackUrlError("The callback URL must start with http:// or https://.")
    if not parts.hostname:
        raise CallbackUrlError("The callback URL has no host.")
    if parts.username or parts.password:
        raise CallbackUrlError("The callback URL must not carry a user name or password.")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise CallbackUrlError("The callback URL must not contain spaces or control characters.")
    try:
        address = allowed_address(parts.hostname, port, allow_private=allow_private)
    except (OSError, UnicodeError):
        raise CallbackUrlError(f"The host {parts.hostname} does not resolve.") from None
    if address is None:
        if allow_private:
            raise CallbackUrlError(
                f"The host {parts.hostname} resolves to a link-local, metadata, multicast or "
                "reserved address; callbacks never go there."
            )
        raise CallbackUrlError(
            f"The host {parts.hostname} resolves to a private, loopback or reserved address; "
            "callbacks go only to public addresses."
        )
    return url
