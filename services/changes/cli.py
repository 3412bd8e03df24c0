"""`tubewatch changes`: the change engine as a process (CONTRACT.md, "Processes")."""

from __future__ import annotations

import argparse

from tubewatch.bus import KafkaBus, bus_from_settings
from tubewatch.changes.engine import ChangeEngine
from tubewatch.changes.state import DatabaseStateStore
from tubewatch.db import get_engine
from tubewatch.lifecycle import run_until_signalled
from tubewatch.settings import get_settings


def build_engine(settings, bus) -> ChangeEngine:
    """The engine for these settings: Kafka changelog + transactions, or the database store."""
    if isinstance(bus, KafkaBus):
        return ChangeEngine(bus)
    return ChangeEngine(bus, state_store=DatabaseStateStore(get_engine(settings.database_url)))


def main(args: argparse.Namespace) -> int:
    settings = get_settings()
    bus = bus_from_settings(settings)
    bus.ensure_topics()
    engine = build_engine(settings, bus)
    run_until_signalled(engine.run)
    return 0
