"""A stand-in for the platforms' CDNs: an https server on 127.0.0.1, and the DNS that finds it.

The server has a certificate for the CDN names, signed by a throwaway CA that only the test's
client trusts, so the client checks TLS exactly as it would in production. Name resolution is
split in two, around the resolver under test (:class:`bot.fetch.PublicAddressResolver`):

* :class:`FakeDNS` answers what a test says a name resolves to (a public-looking address, a
  private one, or a mix), and the guard checks that answer;
* :class:`Tunnel`, outside the guard, sends a connection the guard allowed to the local server
  instead of the public address. Only the tunnel knows about 127.0.0.1.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CDN_NAMES = ("cdn.discordapp.com", "media.discordapp.net", "files.slack.com", "evil.example")
#: A public address (Cloudflare's, where Discord's CDN lives); nothing ever connects to it.
PUBLIC = "162.159.130.233"


def tls_contexts(tmp: Path, names: tuple[str, ...] = CDN_NAMES) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts: a leaf certificate for ``names`` and a client trusting only its CA."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imaginebot test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
        ), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cdn.pem", tmp / "cdn.key"
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server, client


class FakeDNS(AbstractResolver):
    """Answers from a table: name -> addresses. An unknown name does not resolve."""

    def __init__(self, table: Mapping[str, list[str]]) -> None:
        self.table = dict(table)
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.table:
            raise OSError(f"no such host: {host}")
        return [_result(host, address, port) for address in self.table[host]]

    async def close(self) -> None:
        return None


class Tunnel(AbstractResolver):
    """Asks ``checked`` (the guard), then connects whatever it allowed to 127.0.0.1:``port``."""

    def __init__(self, checked: AbstractResolver, port: Callable[[], int]) -> None:
        self.checked = checked
        self.port = port

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        allowed = await self.checked.resolve(host, port, family)
        return [_result(host, "127.0.0.1", self.port()) for _ in allowed[:1]]

    async def close(self) -> None:
        await self.checked.close()


def _result(host: str, address: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    return ResolveResult(hostname=host, host=address, port=port, family=family, proto=0,
                         flags=socket.AI_NUMERICHOST)


@dataclass
class Seen:
    path: str
    host: str
    authorization: str | None


Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class FakeCDN:
    """An https server on 127.0.0.1; ``routes`` maps a path to a handler; ``seen`` records requests."""

    server_ssl: ssl.SSLContext
    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.server_ssl)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen(request.path, request.host, request.headers.get("Authorization")))
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=404, text="no such file")
        return await handler(request)
