"""Notification targets (apprise URLs): validation and sending, shared by api and notifier.

- `validate_target` refuses what apprise cannot parse and, unless allowed, targets on
  loopback, private, link-local or otherwise non-public addresses (SSRF guard).
- `send_to_target` sends one message to one target and reports the outcome without ever
  putting the target's secrets in the result (errors are redacted).
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

import apprise

from tubewatch.secrets import redact_target

log = logging.getLogger(__name__)


class TargetError(ValueError):
    """A target that cannot be used; the message never contains the target's secrets."""


def _host_of(plugin: apprise.plugins.NotifyBase) -> str | None:
    host = getattr(plugin, "host", None)
    if not host:
        return None
    return str(host).strip("[]").lower()


def is_private_host(host: str) -> bool:
    """True for localhost names and for IP literals that are not globally routable."""
    if host == "localhost" or host.endswith(".localhost") or host.endswith(".local"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a DNS name (or a token-as-host, like tgram://BOTTOKEN/...)
    return not address.is_global


def parse_target(url: str) -> apprise.plugins.NotifyBase:
    """The apprise plugin for ``url``, or TargetError (message redacted)."""
    if not isinstance(url, str) or not url.strip():
        raise TargetError("target must be a non-empty apprise URL")
    plugin = apprise.Apprise.instantiate(url.strip(), suppress_exceptions=True)
    if plugin is None:
        raise TargetError(f"apprise cannot parse target {redact_target(url)}")
    return plugin


def validate_target(url: str, allow_private: bool) -> apprise.plugins.NotifyBase:
    """Checks one target; returns its apprise plugin. Raises TargetError."""
    plugin = parse_target(url)
    host = _host_of(plugin)
    if not allow_private and host and is_private_host(host):
        raise TargetError(
            f"target {redact_target(url)} points at a private or loopback address "
            "(set TUBEWATCH_ALLOW_PRIVATE_TARGETS=true to allow it)"
        )
    return plugin


@dataclass(frozen=True)
class SendResult:
    target: str  # redacted
    ok: bool
    error: str | None = None


def send_to_target(
    url: str,
    title: str,
    body: str,
    allow_private: bool,
    body_format: str = apprise.NotifyFormat.MARKDOWN,
) -> SendResult:
    """Sends one message to one target through apprise (blocking).

    apprise converts the Markdown body to what the channel speaks (HTML for email, plain text
    where nothing richer is supported). Errors apprise logs are captured, redacted and returned.
    """
    shown = redact_target(url)
    try:
        validate_target(url, allow_private)
    except TargetError as exc:
        return SendResult(shown, False, str(exc))
    notifier = apprise.Apprise()
    notifier.add(url)
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
        ok = bool(notifier.notify(body=body, title=title, body_format=body_format))
        detail = captured.getvalue() if not ok else ""
    if ok:
        return SendResult(shown, True)
    return SendResult(shown, False, _summarise_failure(detail, url))


def _summarise_failure(detail: str, url: str) -> str:
    """The last line apprise logged about the failure, with the target's secrets removed."""
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    text = lines[-1] if lines else "delivery failed"
    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    secrets = {url}
    if plugin is not None:
        for attr in ("password", "token", "user", "apikey", "webhook_id", "access_token"):
            value = getattr(plugin, attr, None)
            if isinstance(value, str) and len(value) > 3:
                secrets.add(value)
        secrets.update(p for p in getattr(plugin, "fullpath", "").split("/") if len(p) > 6)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text[:500]
