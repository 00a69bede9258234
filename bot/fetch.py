"""Fetching an image a user pointed at by URL, without letting the URL point us anywhere else.

A link in a chat message is the sender's choice, so before a byte is fetched:

* the URL must be ``https`` on the default port, without user info, and its host one of the
  platforms' CDNs (:data:`PLATFORM_CDNS`, or the list given): exact names, no subdomains;
* every address the host resolves to must be public: loopback, private, link-local (cloud
  metadata lives at 169.254.169.254), shared (CGNAT), multicast, reserved and unspecified
  addresses are refused, also when IPv6 only wraps them (``::ffff:10.0.0.1``, 6to4, NAT64). One bad
  address among good ones refuses the lot. The check runs inside the connection's resolver
  (:class:`PublicAddressResolver`, installed by :func:`image_session`), so the address checked is
  the address connected to: a second DNS answer cannot swap in another (DNS rebinding);
* redirects are followed by hand, at most :data:`MAX_REDIRECTS`, each target checked like the
  first; headers the caller gave (a Slack token) go only to the original host;
* the answer must be 200 with an image Content-Type we read and no Content-Encoding, and the
  body is streamed with a byte cap, so a huge or endless file costs at most ``max_bytes``.

Environment proxies are ignored (``trust_env=False``): a proxy would resolve names itself and
skip the address check. Every refusal is :class:`~bot.errors.BadImage` with a sentence for the
user; the bytes still go through :func:`bot.images.validate_user_image` afterwards.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Collection, Mapping

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from bot.errors import BadImage
from bot.images import MAX_USER_IMAGE_BYTES

#: Where Discord and Slack serve uploaded files.
PLATFORM_CDNS = ("cdn.discordapp.com", "media.discordapp.net", "files.slack.com")
MAX_REDIRECTS = 3
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
FETCH_TIMEOUT_SECONDS = 30.0
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

NOT_A_PLATFORM_LINK = (
    "I only fetch images uploaded to Discord or Slack (an https link to their file servers). "
    "Attach the picture to your message instead."
)
PRIVATE_ADDRESS = (
    "That link leads to a private or local network address, so I won't open it. "
    "Attach the picture to your message instead."
)
UNREACHABLE = "I couldn't download that image; try uploading it again."


class PrivateAddress(OSError):
    """A host resolved to an address that is not public; raised by the resolver, before connecting."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"{host} resolves to {address}, which is not a public address")
        self.host = host
        self.address = address


def is_public(address: str) -> bool:
    """Whether ``address`` is a public unicast address (see the module docstring)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        wrapped = [ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None]
        if ip in _NAT64:
            wrapped.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if any(inner is not None and not is_public(str(inner)) for inner in wrapped):
            return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


class PublicAddressResolver(AbstractResolver):
    """Resolves with ``inner`` and raises :class:`PrivateAddress` if any answer is not public."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        for entry in found:
            if not is_public(entry["host"]):
                raise PrivateAddress(host, entry["host"])
        return found

    async def close(self) -> None:
        await self._inner.close()


def image_session(
    *, resolver: AbstractResolver | None = None, ssl_context: ssl.SSLContext | None = None,
    timeout: float = FETCH_TIMEOUT_SECONDS,
) -> aiohttp.ClientSession:
    """The session :func:`fetch_user_image` needs: every connection's addresses checked, no proxies.

    ``resolver`` replaces the default :class:`PublicAddressResolver`; it must refuse non-public
    addresses itself (wrap your resolver in one). ``ssl_context`` replaces the system's CAs.
    """
    connector = aiohttp.TCPConnector(
        resolver=resolver or PublicAddressResolver(), ssl=ssl_context if ssl_context is not None else True,
    )
    return aiohttp.ClientSession(
        connector=connector, trust_env=False, auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=timeout),
    )


def check_url(url: str | URL, allowed_hosts: Collection[str], *, require_https: bool = True) -> URL:
    """The parsed URL when it may be fetched; :class:`BadImage` otherwise (before any network use)."""
    try:
        parsed = URL(url) if isinstance(url, str) else url
    except (TypeError, ValueError):
        raise BadImage(NOT_A_PLATFORM_LINK) from None
    host = (parsed.host or "").rstrip(".").lower()
    schemes = ("https",) if require_https else ("https", "http")
    if (
        parsed.scheme not in schemes
        or not host
        or parsed.user is not None
        or parsed.password is not None
        or parsed.port != (443 if parsed.scheme == "https" else 80)
    ):
        raise BadImage(NOT_A_PLATFORM_LINK)
    literal = _literal_address(host)
    if literal is not None:  # a literal address never reaches the resolver, so it is refused here
        raise BadImage(PRIVATE_ADDRESS if not is_public(literal) else NOT_A_PLATFORM_LINK)
    if host not in {h.lower() for h in allowed_hosts}:
        raise BadImage(NOT_A_PLATFORM_LINK)
    return parsed


def _literal_address(host: str) -> str | None:
    """The address a host name spells, in any form C's resolver reads ("2130706433", "0x7f.1", "[::1]")."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


async def fetch_user_image(
    url: str,
    *,
    session: aiohttp.ClientSession,
    allowed_hosts: Collection[str] = PLATFORM_CDNS,
    max_bytes: int = MAX_USER_IMAGE_BYTES,
    headers: Mapping[str, str] | None = None,
    require_https: bool = True,
) -> bytes:
    """The image at ``url`` (see the module docstring for every check). Raises :class:`BadImage`.

    ``session`` must come from :func:`image_session`. ``require_https=False`` is for tests only.
    """
    target = check_url(url, allowed_hosts, require_https=require_https)
    origin = target.host
    for _ in range(MAX_REDIRECTS + 1):
        sent = dict(headers or {}) if target.host == origin else {}
        try:
            async with session.get(target, headers=sent, allow_redirects=False) as response:
                if response.status in (301, 302, 303, 307, 308):
                    location = response.headers.get("Location", "")
                    target = check_url(target.join(URL(location)), allowed_hosts, require_https=require_https)
                    continue
                return await _read_image(response, max_bytes)
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, PrivateAddress) or isinstance(exc.__cause__, PrivateAddress):
                raise BadImage(PRIVATE_ADDRESS) from exc
            raise BadImage(UNREACHABLE) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BadImage(UNREACHABLE) from exc
    raise BadImage("That link redirects too many times; attach the picture instead.")


async def _read_image(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    if response.status != 200:
        raise BadImage(f"I couldn't download that image (the server answered {response.status}).")
    kind = response.content_type.lower()
    if kind not in IMAGE_TYPES:
        shown = kind or "no type"
        raise BadImage(f"That link is not a PNG, JPEG, WEBP or GIF image (it is {shown[:60]}).")
    if response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity"):
        raise BadImage("That image was sent compressed in a way I don't accept; attach it instead.")
    if response.content_length is not None and response.content_length > max_bytes:
        raise BadImage(_too_big(max_bytes))
    data = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > max_bytes:
            raise BadImage(_too_big(max_bytes))
    return bytes(data)


def _too_big(max_bytes: int) -> str:
    return f"That image is larger than {max_bytes / (1024 * 1024):g} MB, the most I accept."
