"""Secrets: notification targets encrypted at rest, and redaction for logs and responses.

Apprise URLs carry tokens (bot tokens, webhook paths, passwords) and request URLs carry the
YouTube API key: neither may reach a log line, an exception text or an API response.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken

from tubewatch.settings import Settings

log = logging.getLogger(__name__)

_QUERY_SECRET = re.compile(r"([?&](?:key|token|access_token|api_key|apikey)=)[^&#\s'\"]+", re.I)


def redact_target(url: str) -> str:
    """An apprise URL shown as scheme and host only: ``tgram://…``, ``json://example.org/…``.

    Hosts of token-only schemes (``tgram://BOTTOKEN/CHAT``) are tokens, so for those only the
    scheme remains; anything we cannot parse becomes ``***``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if not parts.scheme:
        return "***"
    host = parts.hostname or ""
    # A "host" that is long or has no dot and is not localhost is a token (tgram, discord…).
    looks_like_host = host == "localhost" or ("." in host and len(host) < 64) or ":" in host
    if host and looks_like_host:
        return f"{parts.scheme}://{host}/…"
    return f"{parts.scheme}://…"


def redact_query_secrets(text: str) -> str:
    """Masks ``key=...`` style secrets in any text that may carry a URL."""
    return _QUERY_SECRET.sub(r"\1***", text)


def secret_key_from(settings: Settings) -> str:
    """TUBEWATCH_SECRET_KEY, or one generated into the data dir on first run (mode 0600)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = Path(settings.data_dir) / "secret.key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    log.info("generated a new secret key in %s", path)
    return key


class TargetCipher:
    """Encrypts and decrypts notification targets (Fernet, key derived from SECRET_KEY)."""

    def __init__(self, secret_key: str):
        digest = hashlib.sha256(secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    @classmethod
    def from_settings(cls, settings: Settings) -> TargetCipher:
        return cls(secret_key_from(settings))

    def encrypt(self, target: str) -> str:
        return self._fernet.encrypt(target.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError("target cannot be decrypted: wrong SECRET_KEY?") from None
