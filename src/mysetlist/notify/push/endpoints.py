"""Where our workers may POST a push message. An endpoint is a URL a fan gives us, so it is
a server-side request forgery channel unless checked (issue 15; the rules are those of
/work/shared/reference/scale-out-facts.md, "Requests to user-given URLs"):

- https on the default port, no credentials in the URL;
- the host on the push-service allow-list (`NOTIFY_PUSH_ALLOWED_HOSTS`: the browsers'
  push services by default; "*" lets any host through to the address rule);
- every address the host resolves to is public: loopback, private, shared, link-local,
  unique-local, multicast, reserved and unspecified ranges are refused, IPv4-mapped and
  6to4 IPv6 addresses are judged by the IPv4 address inside.

Checked when a browser subscribes and again at each send, where the connection goes to
the very addresses just checked (`CheckingResolver` is the resolver of the push channel's
HTTP client: a name that resolves elsewhere a second later, DNS rebinding, gains nothing).
Redirects are never followed (channel.py).

Local push servers in tests are origins in `NOTIFY_PUSH_TEST_ORIGINS` (scheme://host:port),
exempt from the rules: an explicit list, never a weaker default.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from mysetlist.notify.config import NotifySettings

RESOLVE_SECONDS = 5.0


class EndpointRefused(OSError):
    """An endpoint our workers must not contact. An OSError, so that aiohttp passes it
    through its connector (as the `os_error` of a ClientConnectorError)."""


def public_address(address: str) -> bool:
    """Whether a connection to `address` (an IP literal) leaves for the public internet."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id is not part of it
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is not None:
            ip = inner
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
        or ip.is_reserved or ip.is_unspecified
    )  # fmt: skip


def _ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class EndpointPolicy:
    allowed_hosts: tuple[str, ...]
    test_origins: frozenset[tuple[str, str, int]]

    @classmethod
    def from_settings(cls, settings: NotifySettings) -> EndpointPolicy:
        origins = set()
        for origin in settings.push_test_origins:
            parts = urlsplit(origin)
            if parts.hostname and parts.port:  # the settings checked the form
                origins.add((parts.scheme, parts.hostname.lower(), parts.port))
        hosts = tuple(h.strip().lower().rstrip(".") for h in settings.push_allowed_hosts)
        return cls(hosts, frozenset(origins))

    def is_test_origin(self, host: str, port: int) -> bool:
        return any(h == host and p == port for _, h, p in self.test_origins)

    def _host_allowed(self, host: str) -> bool:
        for pattern in self.allowed_hosts:
            if pattern == "*" or pattern == host:
                return True
            if pattern.startswith("*.") and host.endswith(pattern[1:]):
                return True
        return False

    def check_url(self, endpoint: str) -> tuple[str, int]:
        """(host, port) of an endpoint whose URL may be contacted, else EndpointRefused.
        A name still has to resolve to public addresses (`resolve_public`)."""
        if any(ord(c) < 0x21 or c == "\x7f" for c in endpoint):
            raise EndpointRefused("must not contain spaces or control characters")
        try:
            parts = urlsplit(endpoint)
            host = (parts.hostname or "").rstrip(".")
            port = parts.port
        except ValueError:  # a malformed IPv6 host or port
            raise EndpointRefused("not a valid URL") from None
        if not host:
            raise EndpointRefused("no host")
        if (parts.scheme, host, port) in self.test_origins:
            return host, port or 0
        if parts.scheme != "https":
            raise EndpointRefused("must be https")
        if port not in (None, 443):
            raise EndpointRefused("must use the default https port")
        if parts.username is not None or parts.password is not None:
            raise EndpointRefused("must not carry credentials")
        if not self._host_allowed(host):
            raise EndpointRefused(f"{host} is not a known push service")
        if _ip_literal(host) and not public_address(host):
            raise EndpointRefused(f"{host} is not a public address")
        return host, 443

    async def resolve_public(self, host: str, port: int) -> list[str]:
        """The addresses of `host`, each one public; else EndpointRefused."""
        if _ip_literal(host):
            return [host]  # check_url judged it
        try:
            async with asyncio.timeout(RESOLVE_SECONDS):
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
        except (socket.gaierror, UnicodeError, TimeoutError):
            raise EndpointRefused(f"{host} does not resolve") from None
        addresses = [str(info[4][0]) for info in infos]
        if not addresses:
            raise EndpointRefused(f"{host} does not resolve")
        refused = [a for a in addresses if not public_address(a)]
        if refused:
            raise EndpointRefused(f"{host} resolves to a non-public address ({refused[0]})")
        return addresses

    async def check(self, endpoint: str) -> None:
        """The whole check, as at subscribe time: the URL, then every address."""
        host, port = self.check_url(endpoint)
        if not self.is_test_origin(host, port):
            await self.resolve_public(host, port)


class CheckingResolver(AbstractResolver):
    """aiohttp's resolver with every answer checked: the connection goes to addresses
    that were judged public this instant (IP literals never reach a resolver: those are
    judged by `EndpointPolicy.check_url` before the request)."""

    def __init__(self, policy: EndpointPolicy) -> None:
        self.policy = policy
        self._resolver = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        if self.policy.is_test_origin(host.lower(), port):
            return results
        refused = [r["host"] for r in results if not public_address(r["host"])]
        if refused:
            raise EndpointRefused(f"{host} resolves to a non-public address ({refused[0]})")
        if not results:
            raise EndpointRefused(f"{host} does not resolve")
        return results

    async def close(self) -> None:
        await self._resolver.close()
