"""Where a webhook may be sent: never, by default, into the network Signoff runs in.

A webhook URL is chosen by an admin, and the server then makes requests to it; without a
check that turns Signoff into a way to reach the cloud metadata service, the database port
or anything else on the private network. So a target is refused when any address its host
resolves to is loopback, private, link-local (the metadata address 169.254.169.254),
shared, multicast, reserved or unspecified (``0.0.0.0``, ``::``), IPv4-mapped forms
included; unless the operator allow-lists it (``SIGNOFF_WEBHOOK_ALLOWLIST``: comma-separated
``host``, ``host:port``, ``ip``, ``ip:port`` or a CIDR network).

The check runs at registration and again at every delivery, on the addresses just resolved,
and the request then goes to exactly those addresses (:func:`pinned_request`), so a name
that re-resolves between the check and the connection (DNS rebinding) gains nothing.
Redirects are never followed (``backend/webhooks/worker.py``).
"""

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_SHARED = ipaddress.ip_network("100.64.0.0/10")


class UnsafeTarget(ValueError):
    """The URL's host is (or resolves to) an address webhooks may not reach."""


@dataclass(frozen=True)
class Allow:
    """One allow-list entry: a host name, or a network; optionally one port only."""

    host: str | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    port: int | None = None

    def admits(self, host: str, ip: IpAddress, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host is not None:
            return self.host == host
        return self.network is not None and ip in self.network


def parse_allowlist(value: str) -> tuple[Allow, ...]:
    entries = []
    for raw in (v.strip().lower() for v in value.split(",")):
        if not raw:
            continue
        host, port = raw, None
        if raw.startswith("["):  # [::1]:8080
            host, _, rest = raw[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else None
        elif raw.count(":") == 1:
            host, _, port_text = raw.partition(":")
            port = int(port_text)
        try:
            entries.append(Allow(network=ipaddress.ip_network(host, strict=False), port=port))
        except ValueError:
            entries.append(Allow(host=host, port=port))
    return tuple(entries)


def is_internal(ip: IpAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED)
    )


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[IpAddress, ...]


def _resolve(host: str, port: int) -> tuple[IpAddress, ...]:
    try:
        return (ipaddress.ip_address(host),)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeTarget(f"The host {host!r} does not resolve.") from None
    found: list[IpAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
        if ip not in found:
            found.append(ip)
    return tuple(found)


def check(url: str, allowlist: tuple[Allow, ...]) -> Target:
    """The URL's target, resolved; :class:`UnsafeTarget` when any address is internal and
    not allow-listed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget("A webhook URL is http(s)://host/...")
    if parts.username or parts.password:
        raise UnsafeTarget("A webhook URL may not carry credentials.")
    host = parts.hostname.lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeTarget("The URL's port is not a number from 1 to 65535.") from None
    addresses = _resolve(host, port)
    if not addresses:
        raise UnsafeTarget(f"The host {host!r} does not resolve.")
    for ip in addresses:
        if is_internal(ip) and not any(a.admits(host, ip, port) for a in allowlist):
            raise UnsafeTarget(
                f"{host} resolves to {ip}, an internal address; webhooks may not reach it "
                "unless an operator allow-lists it (SIGNOFF_WEBHOOK_ALLOWLIST)."
            )
    return Target(url, parts.scheme, host, port, addresses)


def pinned_request(target: Target) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL to connect to (the first checked address, not the name), the Host header and
    the TLS server name: the request goes where the check looked."""
    parts = urlsplit(target.url)
    ip = target.addresses[0]
    literal = f"[{ip}]" if isinstance(ip, ipaddress.IPv6Address) else str(ip)
    netloc = f"{literal}:{target.port}"
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    if ":" in target.host:  # an IPv6 literal host
        host_header = f"[{target.host}]" + ("" if target.port == default_port else f":{target.port}")
    extensions: dict[str, Any] = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), {"host": host_header}, extensions
