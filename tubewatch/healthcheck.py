"""Container health probe: ``python -m tubewatch.healthcheck --http URL --tcp HOST:PORT``.

The image is ``python:3.11-slim``, which has neither curl nor wget, so docker-compose's
health checks call this instead. Every ``--http`` URL must answer 2xx and every ``--tcp``
address must accept a connection within ``--timeout`` seconds; the exit status is 0 when all
do, 1 otherwise (one line on stderr says which check failed, without the URL's query string,
so a probe never prints a secret).
"""

from __future__ import annotations

import argparse
import socket
import sys
import urllib.error
import urllib.request
from urllib.parse import urlsplit


def check_http(url: str, timeout_s: float) -> str | None:
    """None when ``url`` answers 2xx, else why not."""
    if urlsplit(url).scheme not in ("http", "https"):
        return "not an http(s) URL"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        return type(exc).__name__
    return None if 200 <= status < 300 else f"HTTP {status}"


def check_tcp(address: str, timeout_s: float) -> str | None:
    """None when ``host:port`` accepts a TCP connection, else why not."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return "expected HOST:PORT"
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return None
    except OSError as exc:
        return type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tubewatch.healthcheck")
    parser.add_argument("--http", action="append", default=[], metavar="URL")
    parser.add_argument("--tcp", action="append", default=[], metavar="HOST:PORT")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    if not args.http and not args.tcp:
        parser.error("give at least one --http or --tcp check")
    failures = []
    for url in args.http:
        reason = check_http(url, args.timeout)
        if reason:
            shown = urlsplit(url)._replace(query="", fragment="").geturl()
            failures.append(f"{shown}: {reason}")
    for address in args.tcp:
        reason = check_tcp(address, args.timeout)
        if reason:
            failures.append(f"{address}: {reason}")
    for failure in failures:
        print(f"unhealthy: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
