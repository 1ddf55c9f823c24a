"""Where a webhook may send: the checks against server-side request forgery (SSRF).

A webhook is a request the server makes on someone's behalf, from inside its network. So:

- **always refused**, whatever the allow-list says: link-local addresses (169.254.0.0/16,
  fe80::/10), cloud metadata endpoints (169.254.169.254, 100.100.100.200, fd00:ec2::254), the
  unspecified addresses (0.0.0.0/8, ::), multicast, and reserved IPv4 (240.0.0.0/4, including
  the broadcast address 255.255.255.255);
- **refused when authentication is on** (``monitor.auth.required``): loopback (127.0.0.0/8,
  ::1), private networks (10/8, 172.16/12, 192.168/16, fc00::/7), shared address space
  (100.64/10) and every other address that is not globally reachable, unless an address or
  CIDR range in ``GANWATCH_WEBHOOK_ALLOWED_HOSTS`` covers it. An open server (the single-user
  one on loopback) may send to them: its user is the machine's user.

IPv4 addresses written inside IPv6 (``::ffff:127.0.0.1``, ``::127.0.0.1``, NAT64 and 6to4) are
judged as the IPv4 address they carry, and a host written the odd ways resolvers accept
(``0x7f000001``, ``2130706433``, ``0177.0.0.1``, ``127.1``) as the address it means.

``GANWATCH_WEBHOOK_ALLOWED_HOSTS`` (comma-separated) holds host names, IP addresses and CIDR
ranges. When it holds anything, a webhook's host must be one of them: a listed name (as
written in the URL), or an address inside a listed address or range. A listed *name* lets the
URL through; it does not vouch for the addresses the name resolves to: those must pass the
checks above on their own (so a loopback or private receiver on an authenticated server needs
its address or range listed too).

The checks run twice: on the URL's text when a webhook is created or changed (a 422 naming
why), and on every address the host resolves to when the delivery worker connects
(``GuardedBackend``): the worker connects only to an address it checked, so a DNS answer that
changes in between cannot slip through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

import httpcore
import httpx

from monitor.encoding import quoted

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Checked in order: the first network holding an address names why it is refused.
ALWAYS_REFUSED: list[tuple[Network, str]] = [
    (ipaddress.ip_network(net), why) for net, why in (
        ("169.254.169.254/32", "a cloud metadata address"),
        ("100.100.100.200/32", "a cloud metadata address"),
        ("fd00:ec2::254/128", "a cloud metadata address"),
        ("169.254.0.0/16", "a link-local address"),
        ("fe80::/10", "a link-local address"),
        ("0.0.0.0/8", "an unspecified address"),
        ("::/128", "an unspecified address"),
        ("224.0.0.0/4", "a multicast address"),
        ("ff00::/8", "a multicast address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
    )]
PRIVATE: list[tuple[Network, str]] = [
    (ipaddress.ip_network(net), why) for net, why in (
        ("127.0.0.0/8", "a loopback address"),
        ("::1/128", "a loopback address"),
        ("10.0.0.0/8", "a private address"),
        ("172.16.0.0/12", "a private address"),
        ("192.168.0.0/16", "a private address"),
        ("fc00::/7", "a private address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    )]
NAT64 = ipaddress.ip_network("64:ff9b::/96")

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


class TargetRefused(Exception):
    """A webhook's target is one this server may not send to (the reason, in words)."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, if it is one of the forms that do."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    value = int(ip)
    if value >> 32 == 0 and value > 1:  # IPv4-compatible ::a.b.c.d (deprecated; not :: or ::1)
        return ipaddress.IPv4Address(value)
    return None


def classify(ip: IPAddress) -> tuple[str, str] | None:
    """("always" | "private", why) for an address a webhook may not simply reach; None for a
    globally reachable one."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(ip.compressed.split("%")[0])
        inner = _embedded_ipv4(ip)
        if inner is not None:
            found = classify(inner)
            if found is not None:
                return found
    for table, kind in ((ALWAYS_REFUSED, "always"), (PRIVATE, "private")):
        for net, why in table:
            if ip.version == net.version and ip in net:
                return kind, why
    if ip.is_multicast:
        return "always", "a multicast address"
    if ip.is_link_local:
        return "always", "a link-local address"
    if not ip.is_global:
        return "private", "an address that is not publicly routable"
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address a URL's host names literally, read the way resolvers read it (so
    ``0x7f000001``, ``2130706433``, ``0177.0.0.1`` and ``127.1`` are 127.0.0.1); None for a
    host name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not host or not re.fullmatch(r"[0-9a-fA-FxX.]+", host) or not host[0].isdigit():
        return None  # inet_aton reads only numbers (decimal, octal, hex) and dots
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a URL a webhook can be sent to (None when it is): what httpx and the
    resolver cannot use is refused when the webhook is saved, not retried every lease."""
    try:
        parsed = httpx.URL(url)
        host = parsed.host  # decodes IDNA, which can fail too
    except (httpx.InvalidURL, TypeError, ValueError) as exc:  # UnicodeError, IDNAError too
        return f"not a valid URL: {str(exc)[:120]}"
    if parsed.scheme not in ("http", "https"):
        return "the URL must start with http:// or https://"
    if not host:
        return "the URL has no host"
    port = parsed.port
    if port is not None and not 1 <= port <= 65535:
        return f"port {port} is out of range (1-65535)"
    if ":" in host:
        if "%" in host:
            return "an IPv6 zone id (%) is not allowed in a webhook's host"
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"{quoted(host)} is not a valid IPv6 address"
        return None
    if literal_address(host) is not None:
        return None
    if "%" in host:  # a space or an escape: no resolver reads it as written
        return f"{quoted(unquote(host))} is not a valid host name"
    try:
        name = parsed.raw_host.decode("ascii").lower().rstrip(".")
    except UnicodeDecodeError:
        return f"{quoted(host)} is not a valid host name"
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        return f"{quoted(host)} is not a valid host name"
    return None


def _entries(text: str) -> Iterable[str]:
    for entry in text.split(","):
        entry = entry.strip().lower()
        if entry:
            yield entry


@dataclass(frozen=True)
class Policy:
    """What this server's webhooks may reach. ``strict``: authentication is on, so loopback
    and private addresses are refused unless ``networks`` holds them."""

    strict: bool
    names: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()
    listed: str = ""  # the allow-list as configured, for messages
    restricted: bool = field(default=False)  # an allow-list is set: hosts must be on it

    @classmethod
    def from_settings(cls, settings) -> Policy:
        from monitor.auth import required

        names, networks = set(), []
        for entry in _entries(settings.webhook_allowed_hosts):
            bare = entry.strip("[]")
            try:
                networks.append(ipaddress.ip_network(bare, strict=False))
            except ValueError:
                names.add(bare.rstrip("."))
        return cls(strict=required(settings), names=frozenset(names), networks=tuple(networks),
                   listed=settings.webhook_allowed_hosts,
                   restricted=bool(names or networks))

    def _listed(self, ip: IPAddress) -> bool:
        candidates = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and (inner := _embedded_ipv4(ip)):
            candidates.append(inner)
        return any(c.version == n.version and c in n for c in candidates for n in self.networks)

    def address_refusal(self, ip: IPAddress) -> str | None:
        """Why this server may not connect to ``ip`` (None: it may)."""
        found = classify(ip)
        if found is None:
            return None
        kind, why = found
        shown = str(ip)
        if isinstance(ip, ipaddress.IPv6Address) and (inner := _embedded_ipv4(ip)):
            shown = f"{ip} (IPv4 {inner})"
        if kind == "always":
            return f"{shown} is {why}: webhooks may never be sent there"
        if not self.strict or self._listed(ip):
            return None
        return (f"{shown} is {why}, refused while authentication is on unless "
                f"GANWATCH_WEBHOOK_ALLOWED_HOSTS lists the address or its range")

    def url_refusal(self, url: str) -> str | None:
        """Why a webhook may not point at ``url``, as far as its text tells (None: as far as
        the text tells, it may; the addresses its host resolves to are checked on connect)."""
        problem = url_problem(url)
        if problem:
            return problem
        host = httpx.URL(url).host.lower()
        ip = literal_address(host)
        if self.restricted:
            if ip is not None:
                allowed = self._listed(ip) or host in self.names
            else:
                allowed = host.rstrip(".") in self.names
            if not allowed:
                return (f"its host {quoted(host)} is not in GANWATCH_WEBHOOK_ALLOWED_HOSTS "
                        f"({self.listed})")
        if ip is not None:
            return self.address_refusal(ip)
        return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the address check at connect time: the host is
    resolved here, every address it resolves to is checked, and the connection is made to a
    checked address (never by name, so nothing is resolved twice). TLS still verifies the
    certificate against the URL's host name, and the Host header is the URL's."""

    def __init__(self, policy: Policy, inner: httpcore.AsyncNetworkBackend | None = None,
                 getaddrinfo=None) -> None:
        self.policy = policy
        self.inner = inner or httpcore.AnyIOBackend()
        self._getaddrinfo = getaddrinfo  # the event loop's, unless a test gives another

    async def resolve(self, host: str, port: int, timeout: float | None) -> list[str]:
        """Every address ``host`` resolves to, each checked (TargetRefused if any fails: a
        name that answers with a forbidden address among allowed ones is not trusted)."""
        getaddrinfo = self._getaddrinfo or asyncio.get_running_loop().getaddrinfo
        try:
            infos = await asyncio.wait_for(
                getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP),
                timeout)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {quoted(host)}: {exc}") from exc
        except asyncio.TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {quoted(host)} timed out") from exc
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        if not addresses:
            raise httpcore.ConnectError(f"{quoted(host)} resolves to no address")
        for address in addresses:
            refusal = self.policy.address_refusal(ipaddress.ip_address(address))
            if refusal:
                if address == host.strip("[]"):
                    raise TargetRefused(refusal)
                raise TargetRefused(f"{host} resolves to {address}, and {refusal}")
        return addresses

    async def connect_tcp(self, host, port, timeout=None, local_address=None,
                          socket_options=None):
        error: Exception | None = None
        for address in await self.resolve(host, port, timeout):
            try:
                return await self.inner.connect_tcp(address, port, timeout=timeout,
                                                    local_address=local_address,
                                                    socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc  # the next address, as a resolver-driven connect would
        assert error is not None
        raise error

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise TargetRefused("webhooks are not sent over unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a connection pool whose every connection goes through
    ``GuardedBackend`` (httpx has no public way to pass a network backend yet), never through
    a proxy from the environment."""

    def __init__(self, policy: Policy, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy))
