"""Signed, expiring video URLs, like the presigned URLs of S3.

``video.url`` carries ``?expires=<unix time>&signature=<HMAC-SHA256>`` over the file's
path and the expiry, so a URL that leaks stops working after
``REELFORGE_VIDEO_URL_TTL`` seconds (default 24 h), and no URL can be changed or
extended without the key. Every GET of a generation hands out a fresh URL.
``REELFORGE_VIDEO_URL_TTL=0`` keeps unsigned capability URLs that never expire.

The key is ``REELFORGE_URL_SIGNING_KEY`` when set. Otherwise it is made once and kept in
the service's database (``jobs.secrets``), which every API replica and worker shares, so
what one process signs any other verifies without anybody distributing a key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from datetime import UTC, datetime

from reelforge.errors import ConfigurationError, Forbidden
from reelforge.settings import Settings

SECRET_NAME = "url-signing"  # noqa: S105 - a name, not a secret
"""The name of the key among the database's service secrets."""
EXPIRES_PARAM = "expires"
SIGNATURE_PARAM = "signature"
MIN_KEY_CHARS = 32


class UrlSigner:
    """Signs and verifies ``(path, expiry)`` pairs with one secret key."""

    def __init__(
        self, key: bytes, ttl_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._key = key
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    def _signature(self, path: str, expires: int) -> str:
        digest = hmac.new(self._key, f"{path}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, path: str) -> str:
        """The query string that makes ``path`` fetchable until now + the TTL."""
        expires = int(self._clock()) + self.ttl_seconds
        return f"{EXPIRES_PARAM}={expires}&{SIGNATURE_PARAM}={self._signature(path, expires)}"

    def verify(self, path: str, expires: str | None, signature: str | None) -> int:
        """Seconds the URL stays valid; ``Forbidden`` with a message saying what to do."""
        refresh = "GET the generation again for a fresh video URL"
        if not expires or not signature:
            raise Forbidden(f"This video URL is not signed; {refresh}")
        if not expires.isdigit() or len(expires) > 12:
            raise Forbidden(f"This video URL is not valid (was it changed?); {refresh}")
        expected = self._signature(path, int(expires))
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise Forbidden(f"This video URL is not valid (was it changed?); {refresh}")
        remaining = int(expires) - int(self._clock())
        if remaining <= 0:
            when = datetime.fromtimestamp(int(expires), UTC).isoformat().replace("+00:00", "Z")
            raise Forbidden(f"This video URL expired at {when}; {refresh}")
        return remaining


def load_signer(settings: Settings, stored_key: Callable[[], str]) -> UrlSigner | None:
    """The signer for ``settings``, or ``None`` when URLs are not signed (TTL 0).

    The key is the configured one, else ``stored_key()`` (the database's shared secret).
    """
    if settings.video_url_ttl == 0:
        return None
    key = settings.url_signing_key.get_secret_value() if settings.url_signing_key else ""
    if key:
        if len(key) < MIN_KEY_CHARS:
            raise ConfigurationError(
                f"REELFORGE_URL_SIGNING_KEY must be at least {MIN_KEY_CHARS} characters "
                "(e.g. the output of `python -c 'import secrets; print(secrets.token_urlsafe())'`)"
            )
        return UrlSigner(key.encode(), settings.video_url_ttl)
    return UrlSigner(stored_key().encode(), settings.video_url_ttl)
