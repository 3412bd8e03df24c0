"""`tubewatch notifier`: the notifier as a process (CONTRACT.md, "Processes").

Besides the contract's settings it honours the notifier's internal knobs of
`tubewatch.settings.Settings` (not part of the contract; tests and operators use them):

| variable | default | meaning |
| --- | --- | --- |
| `TUBEWATCH_NOTIFIER_TOPIC` | `video_changes` | topic to consume |
| `TUBEWATCH_NOTIFIER_GROUP` | `tubewatch-notifier` | consumer group id |
| `TUBEWATCH_NOTIFIER_WORKERS` | `8` | parallel sends |
| `TUBEWATCH_NOTIFIER_LEASE_S` | `30` | how long a claimed delivery is reserved for a sender |
| `TUBEWATCH_NOTIFIER_RETRY_BASE_S` | `2` | first retry delay cap (doubles per attempt) |
| `TUBEWATCH_NOTIFIER_MAX_ATTEMPTS` | `8` | attempts before a delivery is `dead` |
| `TUBEWATCH_DIGEST_WINDOW_S` | `3` | digest window |

`tubewatch run` honours them too; a bad value is a configuration error naming the variable.
"""

from __future__ import annotations

import argparse

from tubewatch.bus import open_database_and_bus
from tubewatch.lifecycle import run_until_signalled
from tubewatch.notifier.service import Notifier
from tubewatch.settings import get_settings


def main(args: argparse.Namespace) -> int:
    """Runs until SIGINT/SIGTERM, then finishes the sends in flight."""
    settings = get_settings()
    engine, bus = open_database_and_bus(settings)
    run_until_signalled(Notifier(settings, engine, bus).run)
    return 0
