"""Prometheus metrics for the processes without an HTTP server of their own.

`tubewatch api` and `tubewatch run` serve every service's metrics at the API's `/metrics`.
`tubewatch poller`, `changes` and `notifier` running as processes of their own serve them
at ``TUBEWATCH_METRICS_BIND`` (``HOST:PORT``, e.g. ``0.0.0.0:9100`` in a container) when set.
"""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

log = logging.getLogger(__name__)


def serve_metrics(bind: str) -> int:
    """Serves the default registry at ``http://bind/metrics`` from a daemon thread.

    Returns the port actually bound (``HOST:0`` picks a free one). Raises ValueError for a
    malformed ``bind``.
    """
    host, sep, port_text = bind.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"TUBEWATCH_METRICS_BIND must be HOST:PORT, got {bind!r}")
    server, _thread = start_http_server(int(port_text), addr=host or "0.0.0.0")
    port = server.server_address[1]
    log.info("serving metrics at http://%s:%d/metrics", host or "0.0.0.0", port)
    return port
