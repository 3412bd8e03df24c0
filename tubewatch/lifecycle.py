"""Running a service loop as a process: SIGINT/SIGTERM ask it to stop, it finishes in-flight
work (its `run(stop)` returns) and the process exits 0."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable


def run_until_signalled(run: Callable[[threading.Event], None]) -> None:
    """Calls ``run(stop)``; SIGINT or SIGTERM sets ``stop``. Main thread only."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    run(stop)
