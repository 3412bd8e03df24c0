"""Prometheus metrics of the change engine, defined once per process (see the poller's).

Updated once per batch, never per record: the engine's loop is its throughput.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

SNAPSHOTS = Counter(
    "tubewatch_changes_snapshots", "Snapshots read from youtube_videos and applied (committed)"
)
CHANGES = Counter("tubewatch_changes_emitted", "Changes committed to video_changes")
DEAD_LETTERS = Counter(
    "tubewatch_changes_dead_letters", "Snapshots the engine sent to the dead-letter topic (Kafka)"
)
ABORTS = Counter(
    "tubewatch_changes_aborted_transactions", "Batches whose transaction failed and were redone"
)
BATCH_SECONDS = Histogram(
    "tubewatch_changes_batch_seconds",
    "Duration of one committed batch, consume to commit",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
