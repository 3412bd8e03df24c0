"""Notification targets (apprise URLs): validation and sending, shared by api and notifier.

- `validate_target` refuses what apprise cannot parse and, unless allowed, targets on
  loopback, private, link-local or otherwise non-public addresses (SSRF guard).
- `send_to_target` sends one message to one target and reports the outcome without ever
  putting the target's secrets in the result (errors are redacted), with the server's
  ``Retry-After`` when it sent one and whether a retry could ever help.
- `body_limit` and `supports_markdown` tell a sender how to shape a message for a channel.
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import apprise
import requests

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
    port = getattr(plugin, "port", None)  # apprise takes any number as a port
    if port is not None and not 1 <= int(port) <= 65535:
        raise TargetError(f"target {redact_target(url)} has port {port}, not 1-65535")
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
    retry_after: float | None = None  # seconds the server asked us to wait (429/503)
    permanent: bool = False  # the target itself is unusable: retrying cannot help


def supports_markdown(plugin: apprise.plugins.NotifyBase) -> bool:
    """True where the channel renders Markdown, or HTML that apprise converts Markdown into.

    Judged by the channel's preferred (first) format: Slack (Markdown), Telegram and email
    (HTML) get Markdown; ntfy, and webhooks (json://, form://) that pass text on as it is,
    get plain text.
    """
    formats = plugin.notify_format
    preferred = formats[0] if isinstance(formats, (tuple, list)) else formats
    return preferred in (apprise.NotifyFormat.MARKDOWN, apprise.NotifyFormat.HTML)


def body_limit(plugin: apprise.plugins.NotifyBase, title: str) -> int:
    """How many characters of body the channel accepts next to ``title`` (Telegram: 4096).

    Where the channel has no separate title (``title_maxlen == 0``) apprise puts the title in
    the body, so it counts against the same limit.
    """
    limit = int(plugin.body_maxlen)
    if plugin.title_maxlen <= 0 or len(title) > plugin.title_maxlen:
        limit -= len(title) + 2
    return max(limit, 0)


# --- Retry-After capture -------------------------------------------------------------------
# apprise does not report a server's Retry-After for most plugins. All of them send through
# `requests`, so a wrapper around `requests.Session.send` (installed once, active only inside
# `_capture_retry_after` on the calling thread) records the header of the responses they get.
_capture = threading.local()
_hook_lock = threading.Lock()
_hook_installed = False
_log_capture_installed = False


def _install_retry_after_hook() -> None:
    global _hook_installed
    with _hook_lock:
        if _hook_installed:
            return
        original = requests.Session.send

        def send(self, request, **kwargs):
            response = original(self, request, **kwargs)
            if getattr(_capture, "active", False):
                header = response.headers.get("Retry-After")
                if header is not None and response.status_code >= 400:
                    _capture.retry_after = parse_retry_after(header)
            return response

        requests.Session.send = send
        _hook_installed = True


def parse_retry_after(value: str, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None if unreadable."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


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
    try:
        plugin = validate_target(url, allow_private)
    except TargetError as exc:
        return SendResult(redact_target(url), False, str(exc), permanent=True)
    return send_with_plugin(plugin, url, title, body, body_format)


def send_with_plugin(
    plugin: apprise.plugins.NotifyBase,
    url: str,
    title: str,
    body: str,
    body_format: str = apprise.NotifyFormat.MARKDOWN,
) -> SendResult:
    """`send_to_target` for a plugin that `validate_target` already returned for ``url``.

    Saves parsing the URL a second time on a sender's hot path.
    """
    shown = redact_target(url)
    _install_retry_after_hook()
    _install_log_capture()
    _capture.active, _capture.retry_after, _capture.lines = True, None, []
    try:
        ok = bool(plugin.notify(body=body, title=title, body_format=body_format))
    finally:
        _capture.active = False
    if ok:
        return SendResult(shown, True)
    detail = "\n".join(_capture.lines)
    return SendResult(
        shown, False, _summarise_failure(detail, url), retry_after=_capture.retry_after
    )


class _ThreadLogCapture(logging.Handler):
    """Collects apprise's warnings for the calling thread only.

    `apprise.LogCapture` listens to every thread: with sends running in parallel, one target's
    error (and its secrets, which only its own URL can redact) could land in another's result.
    """

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(_capture, "active", False):
            _capture.lines.append(record.getMessage())


def _install_log_capture() -> None:
    global _log_capture_installed
    with _hook_lock:
        if _log_capture_installed:
            return
        logging.getLogger("apprise").addHandler(_ThreadLogCapture(logging.WARNING))
        _log_capture_installed = True


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
