"""`tubewatch notifier`: the notifier as a process (CONTRACT.md, "Processes").

Besides the contract's settings it reads a few optional environment variables (internal
knobs, not part of the contract; tests and operators use them):

| variable | default | meaning |
| --- | --- | --- |
| `TUBEWATCH_NOTIFIER_TOPIC` | `video_changes` | topic to consume |
| `TUBEWATCH_NOTIFIER_GROUP` | `tubewatch-notifier` | consumer group id |
| `TUBEWATCH_NOTIFIER_WORKERS` | `8` | parallel sends |
| `TUBEWATCH_NOTIFIER_LEASE_S` | `30` | how long a claimed delivery is reserved for a sender |
| `TUBEWATCH_NOTIFIER_RETRY_BASE_S` | `2` | first retry delay cap (doubles per attempt) |
| `TUBEWATCH_NOTIFIER_MAX_ATTEMPTS` | `8` | attempts before a delivery is `dead` |
| `TUBEWATCH_DIGEST_WINDOW_S` | `3` | digest window (a setting of `tubewatch.settings`) |
"""

from __future__ import annotations

import argparse
import logging
import os

from tubewatch.bus import bus_from_settings
from tubewatch.db import get_engine, init_db
from tubewatch.kafka import VIDEO_CHANGES
from tubewatch.lifecycle import run_until_signalled
from tubewatch.notifier.retry import RetryPolicy
from tubewatch.notifier.service import DEFAULT_GROUP, Notifier
from tubewatch.settings import get_settings

log = logging.getLogger(__name__)


def main(args: argparse.Namespace) -> int:
    """Runs until SIGINT/SIGTERM, then finishes the sends in flight."""
    env = os.environ
    settings = get_settings()
    engine = get_engine(settings.database_url)
    init_db(engine)
    bus = bus_from_settings(settings)
    bus.ensure_topics()
    notifier = Notifier(
        settings,
        engine,
        bus,
        topic=env.get("TUBEWATCH_NOTIFIER_TOPIC", VIDEO_CHANGES),
        group_id=env.get("TUBEWATCH_NOTIFIER_GROUP", DEFAULT_GROUP),
        policy=RetryPolicy(
            base_s=float(env.get("TUBEWATCH_NOTIFIER_RETRY_BASE_S", "2")),
            max_attempts=int(env.get("TUBEWATCH_NOTIFIER_MAX_ATTEMPTS", "8")),
        ),
        workers=int(env.get("TUBEWATCH_NOTIFIER_WORKERS", "8")),
        lease_s=float(env.get("TUBEWATCH_NOTIFIER_LEASE_S", "30")),
    )
    run_until_signalled(notifier.run)
    return 0
