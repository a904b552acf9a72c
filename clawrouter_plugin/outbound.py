"""The outbound URL policy: which addresses the proxy may fetch from on a user's behalf.

Every such fetch (an image URL, each of its redirects, an image URL the upstream returns) goes
through one :class:`OutboundPolicy`. For each hop the host name is resolved once, every
address it resolves to is checked, and the connection is then made to exactly those checked
addresses (a pinning resolver), so a name cannot resolve to a public address for the check and
to a private one for the connection. The URL keeps its host name, so the ``Host`` header, TLS
SNI and the certificate check still use the name.

Refused unless ``images.allowPrivateUrls`` is on: loopback, private (RFC 1918, unique local),
link-local, CGNAT (100.64/10), documentation and benchmark ranges. Always refused: multicast,
unspecified (``0.0.0.0``, ``::``), reserved and broadcast addresses, and the proxy's own port
on a loopback address. IPv6 forms that embed an IPv4 address (``::ffff:127.0.0.1``,
``::127.0.0.1``, 6to4, NAT64) are judged by the IPv4 address inside. Host names spelt as
numbers (``2130706433``, ``0x7f.1``) are resolved like any name and judged by the result.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Awaitable, Callable, Iterable

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from . import USER_AGENT

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses``: how names are turned into addresses (a seam for tests)."""

_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"),)
_COMPAT = ipaddress.IPv6Network("::/96")  # deprecated IPv4-compatible ::a.b.c.d
_DEFAULT_PORTS = {"http": 80, "https": 443}


class OutboundRefused(Exception):
    """A URL the policy will not fetch; the message is for the log, never for the client."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the operating system's resolver (``getaddrinfo``)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, 6to4, NAT64), if any."""
    if address.version == 4:
        return None
    assert isinstance(address, ipaddress.IPv6Address)
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if (address in _COMPAT and int(address) > 1) or any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_kind(address: IPAddress) -> str:
    """``"public"``, ``"private"`` (allowed only with the opt-in) or ``"forbidden"``."""
    address = embedded_ipv4(address) or address
    if address.is_multicast or address.is_unspecified:
        return "forbidden"
    if address.is_loopback:  # before is_reserved: ::1 lies in the reserved ::/8
        return "private"
    if address.is_reserved:
        return "forbidden"
    if address.is_global and not (address.version == 6 and address.is_site_local):
        return "public"
    return "private"


class OutboundPolicy:
    """Checks and pins the addresses of every outbound fetch made for a user.

    ``allow_private`` is the ``images.allowPrivateUrls`` opt-in. ``own_url`` returns the
    proxy's public URL (its port is refused on loopback even with the opt-in). ``trusted``
    are base URLs whose exact host and port are allowed whatever they resolve to: the
    configured upstream, which already receives the requests and payments.
    """

    def __init__(self, *, allow_private: bool = False,
                 own_url: Callable[[], str] | None = None, trusted: Iterable[str] = (),
                 resolver: Resolver = system_resolver, user_agent: str = USER_AGENT):
        self.allow_private = allow_private
        self._own_url = own_url
        self._trusted = {origin for origin in (_origin(URL(base)) for base in trusted) if origin}
        self._resolve = resolver
        self.user_agent = user_agent

    async def vet(self, url: URL) -> list[str]:
        """The checked addresses to connect to for ``url``; raises :class:`OutboundRefused`."""
        if url.scheme not in _DEFAULT_PORTS or not url.raw_host:
            raise OutboundRefused(f"not an http(s) URL with a host: {url.scheme!r}")
        host, port = url.raw_host, url.port or _DEFAULT_PORTS[url.scheme]
        literal = _ip(host)
        try:
            found = [str(literal)] if literal is not None else await self._resolve(host, port)
        except (OSError, UnicodeError, ValueError) as exc:
            raise OutboundRefused(f"cannot resolve {host!r}: {exc}") from None
        parsed = [_ip(text.split("%", 1)[0]) for text in found]  # "%": an IPv6 scope
        addresses = [address for address in parsed if address is not None]
        if not addresses or len(addresses) != len(found):
            raise OutboundRefused(f"{host!r} resolved to no usable address: {found!r}")
        trusted = (host.lower(), port) in self._trusted
        for address in addresses:
            problem = self._problem(address, port, trusted)
            if problem:
                raise OutboundRefused(f"{host!r} resolves to {address}: {problem}")
        return [str(address) for address in addresses]

    def _problem(self, address: IPAddress, port: int, trusted: bool) -> str | None:
        inner = embedded_ipv4(address) or address
        if port == self._own_port() and (inner.is_loopback or inner.is_unspecified):
            return "the proxy's own address"
        kind = address_kind(address)
        if kind == "public" or (kind == "private" and (self.allow_private or trusted)):
            return None
        return f"a {kind} address (images.allowPrivateUrls is off)" if kind == "private" \
            else f"a {kind} address"

    def _own_port(self) -> int | None:
        if self._own_url is None:
            return None
        origin = _origin(URL(self._own_url()))
        return origin[1] if origin else None

    def session(self) -> PinnedSession:
        """A client session that connects only to addresses this policy checked."""
        return PinnedSession(self)


class PinnedSession:
    """One fetch's HTTP session: ``get`` checks the URL's host, then connects to what it vetted.

    Used as ``async with policy.session() as http: async with await http.get(url) as resp``.
    Redirects are not followed (the caller checks every hop by calling ``get`` again).
    """

    def __init__(self, policy: OutboundPolicy):
        self._policy = policy
        self._resolver = _PinnedResolver()
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> PinnedSession:
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=self._resolver, use_dns_cache=False,
                                           limit=2),
            headers={"user-agent": self._policy.user_agent},
            cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)  # no proxy: pinning holds
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._http is not None:
            await self._http.close()

    async def get(self, url: URL, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """GET ``url`` (no redirects followed) after checking its host's addresses."""
        assert self._http is not None, "use PinnedSession with async with"
        addresses = await self._policy.vet(url)
        self._resolver.pin(url.raw_host or "", addresses)
        return await self._http.get(url, allow_redirects=False, headers=headers)


class _PinnedResolver(AbstractResolver):
    """Answers only with addresses the policy checked; never asks the network."""

    def __init__(self) -> None:
        self._pinned: dict[str, list[str]] = {}

    def pin(self, host: str, addresses: list[str]) -> None:
        self._pinned[host] = addresses

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        addresses = self._pinned.get(host)
        if not addresses:
            raise OSError(f"{host!r} was not checked by the outbound policy")
        return [ResolveResult(hostname=host, host=address, port=port,
                              family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                              proto=socket.IPPROTO_TCP, flags=socket.AI_NUMERICHOST)
                for address in addresses]

    async def close(self) -> None:
        self._pinned.clear()


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _origin(url: URL) -> tuple[str, int] | None:
    """(lower-case host, port) of an http(s) URL, or None."""
    if url.scheme not in _DEFAULT_PORTS or not url.raw_host:
        return None
    return url.raw_host.lower(), url.port or _DEFAULT_PORTS[url.scheme]
