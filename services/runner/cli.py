"""`tubewatch run`: api + poller + changes + notifier in one process (CONTRACT.md)."""

from __future__ import annotations

import argparse

from tubewatch.runner.stack import Stack
from tubewatch.settings import get_settings


def main(args: argparse.Namespace) -> int:
    """Runs until SIGINT/SIGTERM; on Kafka when TUBEWATCH_KAFKA_BOOTSTRAP is set."""
    stack = Stack(get_settings())
    return stack.serve(args.host, args.port, log_level=args.log_level.lower())
