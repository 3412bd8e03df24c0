"""``tubewatch api [--host] [--port]``: serve the API with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from tubewatch.api.main import create_app
from tubewatch.settings import get_settings


def main(args: argparse.Namespace) -> int:
    """uvicorn handles SIGINT/SIGTERM itself and shuts the app down cleanly."""
    app = create_app(get_settings())
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", proxy_headers=False)
    return 0
