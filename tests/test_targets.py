"""Target validation and sending against a real local HTTP receiver."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tubewatch.targets import TargetError, send_to_target, validate_target

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.mark.parametrize(
    "url",
    [
        "json://127.0.0.1:8080/hook",
        "json://localhost/x",
        "form://10.1.2.3/x",
        "json://[::1]:9000/",
        "json://169.254.169.254/latest",
        "ntfy://192.168.1.4/topic",
    ],
)
def test_private_targets_refused_unless_allowed(url):
    with pytest.raises(TargetError, match="private or loopback"):
        validate_target(url, allow_private=False)
    assert validate_target(url, allow_private=True) is not None


@pytest.mark.parametrize(
    "url", ["json://hooks.example.org/x", f"tgram://{TOKEN}/12345", "mailto://u:p@example.com"]
)
def test_public_targets_accepted(url):
    assert validate_target(url, allow_private=False) is not None


@pytest.mark.parametrize("url", ["bogus://x/tok3n", "", "not a url", "https://"])
def test_unparseable_targets_refused_without_leaking(url):
    with pytest.raises(TargetError) as info:
        validate_target(url, allow_private=True)
    assert "tok3n" not in str(info.value)


@pytest.mark.parametrize("port", ["0", "65536", "99999999"])
def test_targets_with_an_impossible_port_are_refused(port):
    with pytest.raises(TargetError, match="not 1-65535") as info:
        validate_target(f"json://user:s3cret@hooks.example.org:{port}/x", allow_private=True)
    assert "s3cret" not in str(info.value)
    assert validate_target("json://hooks.example.org:65535/x", allow_private=False) is not None


class _Receiver(BaseHTTPRequestHandler):
    bodies: list = []
    status = 200
    extra_headers: dict = {}

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).status)
        for name, value in type(self).extra_headers.items():
            self.send_header(name, value)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    _Receiver.bodies = []
    _Receiver.status = 200
    _Receiver.extra_headers = {}
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], _Receiver
    server.shutdown()


def test_send_reaches_a_real_receiver(receiver):
    port, handler = receiver
    result = send_to_target(f"json://127.0.0.1:{port}/hook", "Title", "**likes** 1 → 2", True)
    assert result.ok and result.error is None
    assert result.target == "json://127.0.0.1/…"
    assert handler.bodies[0]["title"] == "Title"
    assert "likes" in handler.bodies[0]["message"]


def test_failure_is_reported_redacted(receiver):
    port, handler = receiver
    handler.status = 500
    url = f"json://user:s3cretpass@127.0.0.1:{port}/hook-s3cretpath"
    result = send_to_target(url, "T", "B", True)
    assert not result.ok
    assert result.error
    assert "s3cret" not in result.error and "s3cret" not in result.target


def test_send_refuses_private_target_when_not_allowed(receiver):
    port, handler = receiver
    result = send_to_target(f"json://127.0.0.1:{port}/hook", "T", "B", False)
    assert not result.ok and "private" in result.error
    assert handler.bodies == []


def test_retry_after_is_reported_and_parsed(receiver):
    from datetime import UTC, datetime

    from tubewatch.targets import parse_retry_after

    port, handler = receiver
    handler.status = 429
    handler.extra_headers = {"Retry-After": "7"}
    result = send_to_target(f"json://127.0.0.1:{port}/hook", "T", "B", True)
    assert not result.ok and result.retry_after == 7.0 and not result.permanent
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Sat, 28 Nov 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("soon") is None


def test_refused_target_is_permanent():
    result = send_to_target("json://127.0.0.1:9/x", "T", "B", allow_private=False)
    assert not result.ok and result.permanent


def test_body_limit_counts_a_title_that_shares_the_body():
    import apprise

    from tubewatch.targets import body_limit, supports_markdown

    telegram = apprise.Apprise.instantiate(f"tgram://{TOKEN}/12345")
    assert body_limit(telegram, "x" * 96) == 4096 - 98
    webhook = apprise.Apprise.instantiate("json://hooks.example.org/x")
    assert body_limit(webhook, "title") == webhook.body_maxlen
    assert supports_markdown(telegram) and not supports_markdown(webhook)
