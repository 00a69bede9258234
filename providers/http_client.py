"""One aiohttp session per HTTP backend (A1111, ComfyUI, Replicate, AI Horde), failures classified.

:class:`HttpClient` sends JSON (or multipart) and reads JSON or bytes. Every failure leaves it
as a ``ProviderError``: a status goes through a provider's own mapper (or
:func:`providers.http_errors.classify`), a connection that never opened becomes
:class:`Unreachable` (nothing can have started there, so a pool may try another server), a read
that outlasts its timeout becomes ``ProviderTimeout``, and an answer that is not JSON is a
malformed answer. Credentials live in ``auth_headers``, sent only on requests marked
``authenticated`` (never to a file host such as replicate.delivery), and every message is
redacted of the secret. The session is opened on first use, inside the event loop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from yarl import URL

from bot.clock import Clock
from bot.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from providers.http_errors import classify, redact, retry_after

log = logging.getLogger(__name__)

#: Maps an HTTP failure (URL, status, parsed body or text, headers) to the provider's error.
ErrorMapper = Callable[[str, int, Any, Mapping[str, str]], ProviderError]


class Unreachable(ProviderUnavailable):
    """Nothing answered at the address (refused, unknown host, connect timeout): no work started there."""


def normalise_base_url(url: str, *, strip: tuple[str, ...] = ()) -> str:
    """``url`` with a scheme, without trailing slashes or an API suffix pasted by mistake.

    "127.0.0.1:7860/" and "http://127.0.0.1:7860/sdapi/v1/" both give "http://127.0.0.1:7860".
    Raises ``ValueError`` for something that is not an http(s) address.
    """
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    text = text.rstrip("/")
    for suffix in strip:
        if text.lower().endswith(suffix):
            text = text[: -len(suffix)].rstrip("/")
    try:
        parsed = URL(text)
    except ValueError as exc:
        raise ValueError(f"'{url}' is not a URL") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"'{url}' is not an http:// or https:// address")
    return text


def error_text(body: Any) -> str:
    """The readable part of an error body, whichever shape the backend uses."""
    if isinstance(body, str):
        return body
    if not isinstance(body, dict):
        return ""
    for key in ("detail", "message", "error", "title"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, dict) and isinstance(value.get("message"), str):
            return str(value["message"])
        if isinstance(value, list) and value:  # FastAPI's 422: [{"loc": [...], "msg": ...}]
            return "; ".join(str(v.get("msg", v)) if isinstance(v, dict) else str(v) for v in value[:3])
    return ""


def origin_of(url: str) -> str:
    parsed = URL(url)
    return str(parsed.origin()) if parsed.host else url


class HttpClient:
    """JSON over aiohttp for one provider; see the module docstring."""

    def __init__(
        self,
        provider: str,
        *,
        clock: Clock,
        auth_headers: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        secret: str | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 300.0,
        on_error: ErrorMapper | None = None,
    ) -> None:
        self.provider = provider
        self.secret = secret
        self._clock = clock
        self._auth = dict(auth_headers or {})
        self._headers = dict(headers or {})
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._on_error = on_error
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers)
        return self._session

    def timeout(self, read: float | None = None) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=None, sock_connect=self._connect_timeout, sock_read=read or self._read_timeout
        )

    async def json(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        data: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        read_timeout: float | None = None,
        authenticated: bool = True,
    ) -> Any:
        """The parsed JSON answer (``None`` for an empty body); a ``ProviderError`` otherwise."""
        raw = await self.read(method, url, json_body=json_body, data=data, params=params, headers=headers,
                              read_timeout=read_timeout, authenticated=authenticated)
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise self.malformed(f"not JSON from {URL(url).path}") from exc

    async def read(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        data: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        read_timeout: float | None = None,
        authenticated: bool = True,
    ) -> bytes:
        """The body of a 2xx answer as bytes; a ``ProviderError`` otherwise."""
        sent = {**(self._auth if authenticated else {}), **(headers or {})}
        try:
            async with self.session.request(
                method, url, json=json_body, data=data, params=params, headers=sent,
                timeout=self.timeout(read_timeout),
            ) as response:
                body = await response.read()
                if response.status >= 400:
                    raise self._failure(url, response.status, body, response.headers)
                return body
        except aiohttp.ClientError as exc:
            raise self.connection_error(exc, url) from exc
        except TimeoutError as exc:
            raise ProviderTimeout(f"no answer from {origin_of(url)} in time", provider=self.provider) from exc

    def connection_error(self, exc: BaseException, url: str) -> ProviderError:
        """The ``ProviderError`` for an aiohttp exception raised while talking to ``url``."""
        where = origin_of(url)
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return Unreachable(f"nothing answers at {where} (no connection within "
                               f"{self._connect_timeout:g} s)", provider=self.provider)
        if isinstance(exc, aiohttp.ServerTimeoutError):
            return ProviderTimeout(f"no answer from {where} in time", provider=self.provider)
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            return Unreachable(f"the host of {where} is unknown (DNS)", provider=self.provider)
        if isinstance(exc, aiohttp.ClientConnectorError):
            reason = "connection refused" if isinstance(exc.os_error, ConnectionRefusedError) else "cannot connect"
            return Unreachable(f"nothing answers at {where} ({reason})", provider=self.provider)
        if isinstance(exc, aiohttp.ClientResponseError):
            return self._failure(url, exc.status, exc.message, exc.headers or {})
        detail = redact(str(exc) or type(exc).__name__, self.secret)
        return ProviderUnavailable(f"the connection to {where} failed ({detail})", provider=self.provider)

    def malformed(self, what: str) -> ProviderUnavailable:
        log.warning("%s: malformed answer (%s)", self.provider, what)
        return ProviderUnavailable(f"malformed answer from the provider ({what})", provider=self.provider)

    def _failure(self, url: str, status: int, raw: bytes | str, headers: Mapping[str, str]) -> ProviderError:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = text.strip()[:300]
        if self._on_error is not None:
            return self._on_error(url, status, body, headers)
        return classify(self.provider, status, error_text(body) or f"HTTP {status}",
                        retry_after=retry_after(headers, self._clock.now()), secret=self.secret)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
