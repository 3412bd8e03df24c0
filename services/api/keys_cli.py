"""``tubewatch keys create --name NAME``: mint an API key and print it on the last line."""

from __future__ import annotations

import argparse
import sys

from tubewatch.api.keys import mint_key
from tubewatch.db import get_engine, init_db, session_scope
from tubewatch.settings import get_settings


def main(args: argparse.Namespace) -> int:
    if args.keys_command != "create":  # pragma: no cover - argparse allows only "create"
        print(f"unknown action {args.keys_command}", file=sys.stderr)
        return 2
    settings = get_settings()
    engine = get_engine(settings.database_url)
    init_db(engine)
    try:
        with session_scope(engine) as session:
            key = mint_key(session, args.name)
    except ValueError as exc:
        print(f"tubewatch keys create: {exc}", file=sys.stderr)
        return 2
    print(f"API key for {args.name.strip()!r} (shown once, store it now):")
    print(key)
    return 0
