"""Real local receivers for notification tests: an HTTP server and an SMTP server.

`HttpReceiver` records every request that apprise's ``json://``, ``form://`` and ``ntfy://``
plugins make (path, headers, parsed body, arrival time) and can be told to fail: the next N
requests answer 500 (or 429 with a ``Retry-After``) before it succeeds again, or every request
fails. `SmtpReceiver` is an aiosmtpd server that records the mails of ``mailto://``.

Use them as context managers::

    with HttpReceiver() as http, SmtpReceiver() as smtp:
        http.fail_next(3, status=500)
        send(f"json://127.0.0.1:{http.port}/hook")
        http.wait_for(1)
"""

from __future__ import annotations

import email
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    at: float  # time.time() on arrival
    status: int  # what the receiver answered

    @property
    def json(self):
        return json.loads(self.raw)

    @property
    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.raw.decode()).items()}

    @property
    def text(self) -> str:
        return self.raw.decode(errors="replace")

    @property
    def message(self) -> str:
        """The alert body whatever the plugin: JSON ``message``, form ``message``, ntfy text."""
        kind = self.headers.get("content-type", "")
        if "json" in kind:
            data = self.json
            return data.get("message", "")
        if "x-www-form-urlencoded" in kind:
            return self.form.get("message", "")
        return self.text

    @property
    def title(self) -> str:
        kind = self.headers.get("content-type", "")
        if "json" in kind:
            return self.json.get("title", "")
        if "x-www-form-urlencoded" in kind:
            return self.form.get("title", "")
        return self.headers.get("x-title", "")


@dataclass
class _Plan:
    """Programmed answers: fail the next ``count`` requests (or all), then succeed."""

    count: int = 0
    forever: bool = False
    status: int = 500
    retry_after: str | None = None
    delay_s: float = 0.0


class HttpReceiver:
    """A ThreadingHTTPServer on 127.0.0.1 recording requests, with programmable failures.

    Failures can be programmed per path (``path="/a"``) or for every path (``path=None``).
    Failed requests are recorded too (``status`` says what was answered); `ok` lists the
    accepted ones.
    """

    def __init__(self):
        self.requests: list[Received] = []
        self._plans: dict[str | None, _Plan] = {}
        self._lock = threading.Condition()
        self.delay_s = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, retry_after, delay = receiver._answer(self.path)
                if delay:
                    time.sleep(delay)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.requests.append(
                        Received(self.command, self.path, headers, raw, time.time(), status)
                    )
                    receiver._lock.notify_all()
                body = b'{"ok": true}' if status < 400 else b'{"error": "programmed"}'
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_PUT = do_GET = _handle  # noqa: N815

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                # A client killed mid-request (the crash tests do that) is not an error here.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _answer(self, path: str) -> tuple[int, str | None, float]:
        base = path.split("?", 1)[0]
        with self._lock:
            plan = self._plans.get(base) or self._plans.get(None)
            if plan and (plan.forever or plan.count > 0):
                plan.count -= 1
                return plan.status, plan.retry_after, plan.delay_s
        return 200, None, self.delay_s

    # --- programming ---------------------------------------------------------------------
    def fail_next(
        self, count: int, status: int = 500, retry_after: str | None = None, path=None
    ) -> None:
        """The next ``count`` requests (to ``path``, or any) answer ``status``."""
        with self._lock:
            self._plans[path] = _Plan(count=count, status=status, retry_after=retry_after)

    def fail_always(self, status: int = 500, path=None) -> None:
        with self._lock:
            self._plans[path] = _Plan(forever=True, status=status)

    def url(self, scheme: str = "json", path: str = "/hook") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    # --- reading -------------------------------------------------------------------------
    @property
    def ok(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.status < 400]

    def to(self, path: str) -> list[Received]:
        """Accepted requests to one path."""
        return [r for r in self.ok if r.path.split("?", 1)[0] == path]

    def wait_for(self, count: int, timeout_s: float = 10, path: str | None = None) -> list:
        """Waits until ``count`` requests were accepted (to ``path`` if given); returns them."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while True:
                got = [
                    r
                    for r in self.requests
                    if r.status < 400 and (path is None or r.path.split("?", 1)[0] == path)
                ]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(got)} of {count} requests arrived in {timeout_s}s")
                self._lock.wait(left)

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    message: Message
    at: float = field(default_factory=time.time)

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    def body(self, subtype: str = "plain") -> str:
        for part in self.message.walk():
            if part.get_content_type() == f"text/{subtype}":
                return part.get_payload(decode=True).decode(errors="replace")
        return ""


class SmtpReceiver:
    """An aiosmtpd server on 127.0.0.1 that records each mail (``mailto://`` targets)."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.mails: list[Mail] = []
        self._lock = threading.Condition()
        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                mail = Mail(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    email.message_from_bytes(envelope.original_content or envelope.content),
                )
                with receiver._lock:
                    receiver.mails.append(mail)
                    receiver._lock.notify_all()
                return "250 OK"

        # aiosmtpd checks it started by connecting to its port: it needs a real one, not 0.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def url(self, to: str = "alerts@example.com") -> str:
        """A ``mailto://`` target for this server (plain SMTP, no login)."""
        return f"mailto://127.0.0.1:{self.port}?mode=insecure&from=tubewatch@example.com&to={to}"

    def wait_for(self, count: int, timeout_s: float = 10) -> list[Mail]:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while len(self.mails) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.mails)} of {count} mails in {timeout_s}s")
                self._lock.wait(left)
            return list(self.mails)

    def __enter__(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
