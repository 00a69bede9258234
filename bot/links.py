"""Signed, expiring gallery links for chat channels.

A Discord or Slack channel's gallery opens only through a link the bot hands out in that
channel: ``/c/<platform>/<channel_id>?exp=<unix seconds>&sig=<HMAC>``. The HMAC-SHA256 covers
the platform, the channel and the expiry, so a link opens exactly one channel until it expires;
changing any part of it breaks the signature. Playground (``web``) channels need no signature.

This module imports nothing from aiohttp, so chat adapters can mint links from the config alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

from bot.config import Config
from bot.errors import ConfigError

SECRET_FILE = "link-secret"
SECRET_BYTES = 32
#: Platform names and chat channel ids as they may appear in a gallery path.
PLATFORM_RE = re.compile(r"[a-z]{1,16}")
CHANNEL_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class GalleryLinks:
    """Mints and checks gallery links; ``base_url`` is where people reach the web server."""

    secret: bytes
    base_url: str
    ttl_seconds: float

    @classmethod
    def from_config(cls, config: Config) -> GalleryLinks:
        """Links signed with ``[web] link_secret``, or with a secret generated once in the storage dir."""
        web = config.web
        if web.link_secret is not None:
            secret = web.link_secret.get_secret_value().encode("utf-8")
        else:
            secret = load_or_create_secret(config.storage.dir / SECRET_FILE)
        host = f"[{web.host}]" if ":" in web.host else web.host
        base = web.public_url or f"http://{host}:{web.port}"
        return cls(secret=secret, base_url=base.rstrip("/"), ttl_seconds=web.link_ttl_hours * 3600)

    def path(self, platform: str, channel_id: str, *, now: float) -> str:
        """The gallery path (with query) for a channel; signed unless it is a playground channel."""
        if platform == "web":
            return f"/c/{quote(channel_id, safe='')}"
        expires = int(now + self.ttl_seconds)
        query = urlencode({"exp": expires, "sig": self.sign(platform, channel_id, expires)})
        return f"/c/{quote(platform, safe='')}/{quote(channel_id, safe='')}?{query}"

    def url(self, platform: str, channel_id: str, *, now: float) -> str:
        """The absolute gallery link to hand out in a channel."""
        return self.base_url + self.path(platform, channel_id, now=now)

    def sign(self, platform: str, channel_id: str, expires: int) -> str:
        message = f"imaginebot-gallery\x00{platform}\x00{channel_id}\x00{expires}".encode()
        digest = hmac.new(self.secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def verify(self, platform: str, channel_id: str, exp: str | None, sig: str | None, *, now: float) -> bool:
        """Whether ``exp``/``sig`` (as found in a URL) open this channel's gallery at ``now``."""
        if exp is None or sig is None or not exp.isdigit() or len(exp) > 12 or len(sig) > 64:
            return False
        expires = int(exp)
        if expires <= now:
            return False
        expected = self.sign(platform, channel_id, expires)
        return hmac.compare_digest(expected.encode("ascii"), sig.encode("ascii", "replace"))


def load_or_create_secret(path: Path) -> bytes:
    """The secret kept in ``path`` (hex), created once with owner-only permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once must not each write their own secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            secret = bytes.fromhex(path.read_text(encoding="ascii").strip())
        except (UnicodeDecodeError, ValueError):
            secret = b""
        if len(secret) < 16:
            raise ConfigError(f"{path} holds no usable link secret; delete it to make a new one") from None
        return secret
    secret = secrets.token_bytes(SECRET_BYTES)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secret.hex() + "\n")
    return secret
