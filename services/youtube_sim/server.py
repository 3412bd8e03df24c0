"""The simulator served on a loopback port from a background thread.

For tests, benchmarks and `tubewatch demo`, which need a real HTTP server next to the code
under test without a second process. Port 0 lets the OS pick a free port (no race); the
actual base URL is yielded once uvicorn accepts connections.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from tubewatch.youtube_sim.app import create_app


@contextmanager
def serve_in_thread(
    app: FastAPI | None = None, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 10
) -> Iterator[str]:
    """Serves ``app`` (default: a fresh simulator); yields ``http://HOST:PORT``; stops on exit."""
    config = uvicorn.Config(
        app or create_app(),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,  # request lines carry the clients' API keys
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="youtube-sim", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the YouTube simulator did not start")
        time.sleep(0.01)
    bound_port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
