"""Prometheus metrics of the notifier, defined once per process.

Module-level objects in the default registry: building several `Notifier` instances in one
process (tests, `tubewatch run`) reuses them instead of registering duplicates.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

SENT = Counter("tubewatch_notifier_sent", "Alerts a target accepted")
FAILED = Counter("tubewatch_notifier_failed", "Send attempts a target refused or that errored")
RETRIED = Counter("tubewatch_notifier_retried", "Deliveries scheduled for another attempt")
DEAD = Counter("tubewatch_notifier_dead", "Deliveries given up on after the last attempt")
RECORDED = Counter("tubewatch_notifier_recorded", "Delivery rows recorded (change x subscription)")
LATENCY = Histogram(
    "tubewatch_notifier_latency_seconds",
    "From a change's polled_at to its alert delivered",
    buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600),
)
