"""``tubewatch api [--host] [--port]``: serve the API with uvicorn."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from tubewatch.api.main import create_app
from tubewatch.listen import CannotListen, check_can_listen
from tubewatch.settings import get_settings


def main(args: argparse.Namespace) -> int:
    """uvicorn handles SIGINT/SIGTERM itself and shuts the app down cleanly.

    A busy or unbindable address is one clear line and exit 2 before anything starts (as
    for `tubewatch run` and `youtube-sim`), not uvicorn's error after the app started.
    """
    try:
        check_can_listen(args.host, args.port)
    except CannotListen as exc:
        print(f"tubewatch api: {exc}", file=sys.stderr)
        return 2
    app = create_app(get_settings())
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", proxy_headers=False)
    return 0
