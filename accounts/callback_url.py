"""Which callback URLs ZeroTP will post to: http(s), a host, and a public address.

Checked when the URL is saved and again before every send (DNS can change in between).
"""

import ipaddress
import socket
from urllib.parse import urlsplit

# Carrier-grade NAT space; Python's is_private does not include it.
_SHARED = ipaddress.ip_network("100.64.0.0/10")


class CallbackUrlError(ValueError):
    pass


def address_is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            ip = mapped
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to (the seam the SSRF tests replace)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


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
    if allow_private:
        return url
    try:
        addresses = resolve(parts.hostname, port)
    except (OSError, UnicodeError):
        raise CallbackUrlError(f"The host {parts.hostname} does not resolve.") from None
    if not addresses or not all(address_is_public(a) for a in addresses):
        raise CallbackUrlError(
            f"The host {parts.hostname} resolves to a private, loopback or reserved address; "
            "callbacks go only to public addresses."
        )
    return url
