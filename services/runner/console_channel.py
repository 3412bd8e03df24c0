"""The demo's console channel: an apprise plugin for ``console://`` that prints alerts.

Registered with apprise's custom-notification decorator, so it goes through the same
validation, rendering and delivery pipeline as Slack or Telegram.
"""

from __future__ import annotations

import sys
import threading

from apprise.decorators import notify

_print_lock = threading.Lock()
_registered = False

CONSOLE_TARGET = "console://"


def register_console_channel(stream=None) -> None:
    """Make ``console://`` a valid apprise target in this process (idempotent)."""
    global _registered
    if _registered:
        return

    @notify(on="console", name="Console")
    def _print_alert(body: str, title: str, notify_type: str, *args, **kwargs) -> bool:
        out = stream or sys.stdout
        with _print_lock:
            out.write(f"\n🔔 {title}\n{body}\n")
            out.flush()
        return True

    _registered = True
