"""`tubewatch youtube-sim`: the YouTube Data API v3 simulator on uvicorn."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys

import uvicorn

from tubewatch.listen import CannotListen, check_can_listen
from tubewatch.youtube_sim.app import create_app


class _Server(uvicorn.Server):
    """uvicorn without its signal capture, which re-raises SIGTERM after a clean stop (the
    process then dies of the signal, exit status 143): SIGINT/SIGTERM stop it and it exits 0."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def main(args: argparse.Namespace) -> int:
    host = getattr(args, "host", "127.0.0.1")
    port = getattr(args, "port", 8090)
    try:
        check_can_listen(host, port)
    except CannotListen as exc:
        print(f"tubewatch youtube-sim: {exc}", file=sys.stderr)
        return 2
    # uvicorn's access log prints request URLs, and clients put their API key in the query.
    config = uvicorn.Config(
        create_app(), host=host, port=port, access_log=False, log_level="warning"
    )
    server = _Server(config)

    def stop(_signum, _frame) -> None:
        if server.should_exit:  # a second signal: don't wait for open connections
            server.force_exit = True
        server.should_exit = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    print(f"YouTube simulator: http://{host}:{port}/youtube/v3 (control: /_sim)", flush=True)
    server.run()
    return 0 if server.started else 3
