"""Gallery links live in the core (``bot.links``) so every chat adapter can mint them; re-exported here."""

from bot.links import CHANNEL_ID_RE, PLATFORM_RE, SECRET_FILE, GalleryLinks, load_or_create_secret

__all__ = ["CHANNEL_ID_RE", "PLATFORM_RE", "SECRET_FILE", "GalleryLinks", "load_or_create_secret"]
