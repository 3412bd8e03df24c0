"""`tubewatch run`: api + poller + changes + notifier in one process (CONTRACT.md)."""

from __future__ import annotations

import argparse
import sys

from tubewatch.listen import CannotListen, check_can_listen
from tubewatch.runner.stack import Stack
from tubewatch.settings import get_settings


def main(args: argparse.Namespace) -> int:
    """Runs until SIGINT/SIGTERM; on Kafka when TUBEWATCH_KAFKA_BOOTSTRAP is set."""
    try:
        check_can_listen(args.host, args.port)  # before anything is created or migrated
        stack = Stack(get_settings())
        return stack.serve(args.host, args.port, log_level=args.log_level.lower())
    except CannotListen as exc:
        print(f"tubewatch run: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before the stack took over the signals (migrating)
        print("tubewatch run: interrupted before it started", file=sys.stderr)
        return 130
