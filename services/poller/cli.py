"""`tubewatch poller [--once]`: the poller as a process (CONTRACT.md, "Processes")."""

from __future__ import annotations

import argparse
import logging

from tubewatch.bus import open_database_and_bus
from tubewatch.lifecycle import run_until_signalled
from tubewatch.poller.service import Poller
from tubewatch.settings import get_settings

log = logging.getLogger(__name__)


def main(args: argparse.Namespace) -> int:
    """Runs until SIGINT/SIGTERM; with ``--once``, one full cycle (exit 1 if it failed)."""
    settings = get_settings()
    engine, bus = open_database_and_bus(settings)
    poller = Poller(settings, engine, bus)
    if getattr(args, "once", False):
        try:
            report = poller.run_cycle()
        finally:
            poller.client.close()
        print(
            f"poll cycle: {report.videos} videos, {report.snapshots} snapshots, "
            f"{len(report.missing)} missing, {report.units} quota units"
            + (f"; error: {report.error}" if report.error else "")
            + (f"; skipped: {report.skipped}" if report.skipped else ""),
            flush=True,
        )
        return 1 if report.error or report.skipped else 0
    run_until_signalled(poller.run)
    return 0
