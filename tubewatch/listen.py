"""Checking that a server's address can be bound, before anything starts.

Shared by every command that serves HTTP (api, run, demo, youtube-sim); no heavy imports.
"""

from __future__ import annotations

import errno
import socket


class CannotListen(Exception):
    """A server's address cannot be bound (a user's mistake: said plainly, no traceback)."""


def check_can_listen(host: str, port: int) -> None:
    """Raises `CannotListen` when ``host:port`` cannot be bound, before anything starts.

    uvicorn would only find out once everything else started, log its error and exit 3.
    The probe binds as uvicorn does (``SO_REUSEADDR``) and closes again at once.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise CannotListen(f"cannot listen on {host}:{port}: unknown address ({exc})") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            hint = ""
            if exc.errno == errno.EADDRINUSE:
                hint = " (another program is using it: choose another port with --port)"
            elif exc.errno == errno.EACCES:
                hint = " (ports below 1024 need privileges: choose another with --port)"
            reason = exc.strerror or str(exc)
            raise CannotListen(f"cannot listen on {host}:{port}: {reason}{hint}") from None
