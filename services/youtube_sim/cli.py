"""`tubewatch youtube-sim`: the YouTube Data API v3 simulator on uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from tubewatch.youtube_sim.app import create_app


def main(args: argparse.Namespace) -> int:
    host = getattr(args, "host", "127.0.0.1")
    port = getattr(args, "port", 8090)
    print(f"YouTube simulator: http://{host}:{port}/youtube/v3 (control: /_sim)", flush=True)
    # uvicorn's access log prints request URLs, and clients put their API key in the query.
    uvicorn.run(create_app(), host=host, port=port, access_log=False, log_level="warning")
    return 0
