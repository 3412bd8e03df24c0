"""Prometheus metrics of the poller, defined once per process.

Module-level objects in the default registry: building several `Poller` instances in one
process (tests, `tubewatch run`) reuses them instead of registering duplicates.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

QUOTA_UNITS = Counter(
    "tubewatch_youtube_quota_units", "YouTube Data API quota units spent (failed calls too)"
)
QUOTA_UNITS_TODAY = Gauge(
    "tubewatch_youtube_quota_units_today", "Quota units spent on the current Pacific-time day"
)
QUOTA_EXHAUSTED = Gauge(
    "tubewatch_youtube_quota_exhausted", "1 while the poller waits for the daily quota reset"
)
CALLS = Counter(
    "tubewatch_youtube_calls",
    "YouTube API requests by endpoint and outcome",
    ["endpoint", "outcome"],
)
SNAPSHOTS = Counter("tubewatch_poller_snapshots", "Video snapshots produced to youtube_videos")
CYCLE_SECONDS = Histogram(
    "tubewatch_poller_cycle_seconds",
    "Duration of one poll cycle",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
