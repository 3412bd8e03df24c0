"""The notifier: `video_changes` in, alerts out through apprise (CONTRACT.md, "Alerts").

Stages, each testable alone (Alertmanager style):

1. consume: a batch of changes from the bus (`TypedConsumer.poll_batch`);
2. match (`matching`): which subscriptions each change concerns and with which metrics;
3. record (`ledger.record`): one `Delivery` row per (event, subscription), inserted
   idempotently in one transaction; only then are the offsets committed;
4. send (`sender.Sender`, its own thread and worker pool): due rows out through apprise,
   grouped into digests, outcomes written per target, retries scheduled with backoff.

Crash windows (where the process can die, and what happens):

- after the poll, before `record` commits: nothing recorded, offsets not committed; the batch
  is consumed again. No loss, no duplicate.
- after `record`, before the offsets are committed: the batch is consumed again; its rows
  already exist and are ignored. No duplicate.
- after a send, before its outcome is written (the HTTP round trip, then the sender thread's
  next batched save, a few milliseconds): the row is still leased; when the lease expires
  (``lease_s``) it is sent again. This window alone is at-least-once: the receiver may see
  that alert twice (at most one per send worker at a kill; the kill test pins this down).
- rows whose outcome could not be saved (database down): sent again after the lease.
- rows leased but not yet sent: picked up again when the lease expires. No loss.

Digests: the first alert for a subscription goes out at once; changes for it in the next
``digest_window_s`` seconds are held until the window ends and leave together as one alert.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from tubewatch.bus import Bus
from tubewatch.messages import VideoChange
from tubewatch.notifier import ledger, metrics
from tubewatch.notifier.matching import match_changes
from tubewatch.notifier.retry import RetryPolicy
from tubewatch.notifier.sender import Sender
from tubewatch.secrets import TargetCipher, secret_key_from
from tubewatch.settings import Settings

log = logging.getLogger(__name__)


class DigestClock:
    """When a subscription's next alert may leave (leading edge, then one per window)."""

    def __init__(self, window_s: float):
        self.window = timedelta(seconds=window_s)
        self._slot: dict[int, datetime] = {}

    def due_at(self, subscription_id: int, now: datetime) -> datetime:
        if self.window <= timedelta(0):
            return now
        slot = self._slot.get(subscription_id)
        if slot is None or now >= slot + self.window:
            self._slot[subscription_id] = now  # nothing recent: send at once
            return now
        if now <= slot:
            return slot  # a held alert is already waiting: join it
        self._slot[subscription_id] = slot + self.window
        return slot + self.window


class Notifier:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        bus: Bus,
        topic: str | None = None,
        group_id: str | None = None,
        *,
        policy: RetryPolicy | None = None,
        workers: int | None = None,
        lease_s: float | None = None,
        digest_window_s: float | None = None,
        batch_size: int = 500,
    ):
        """Arguments left out come from ``settings`` (the ``TUBEWATCH_NOTIFIER_*`` knobs)."""
        self.settings = settings
        self.engine = engine
        self.bus = bus
        self.topic = topic or settings.notifier_topic
        self.group_id = group_id or settings.notifier_group
        self.batch_size = batch_size
        secret = secret_key_from(settings)
        self.sender = Sender(
            engine,
            TargetCipher(secret),
            hashlib.sha256(b"tubewatch target id\0" + secret.encode()).digest(),
            settings.allow_private_targets,
            policy
            or RetryPolicy(
                base_s=settings.notifier_retry_base_s,
                max_attempts=settings.notifier_max_attempts,
            ),
            workers=workers or settings.notifier_workers,
            lease_s=lease_s or settings.notifier_lease_s,
        )
        window = settings.digest_window_s if digest_window_s is None else digest_window_s
        self.digest = DigestClock(window)
        self._consumer = None

    @property
    def consumer(self):
        if self._consumer is None:
            self._consumer = self.bus.consumer(self.group_id, self.topic, VideoChange)
        return self._consumer

    def handle(self, changes: list[VideoChange]) -> int:
        """Match and record a batch of changes (steps 2-3); returns new delivery rows."""
        with Session(self.engine) as session:
            matches = match_changes(session, changes)
        recorded = ledger.record(self.engine, matches, self.digest.due_at)
        metrics.RECORDED.inc(recorded)
        if recorded:
            self.sender.wake.set()
        return recorded

    def process_batch(self, timeout_s: float = 0.1) -> int:
        """One consumer step: poll, match, record, then commit. Returns messages consumed.

        The poll returns after ``timeout_s`` at the latest even with a short batch: that bounds
        the latency a quiet topic adds to an alert.
        """
        batch = self.consumer.poll_batch(self.batch_size, timeout_s)
        if not batch:
            return 0
        self.handle([record.value for record in batch])
        self.consumer.commit()
        return len(batch)

    def run(self, stop: threading.Event) -> None:
        """Consumes and sends until ``stop``; then finishes the sends in flight and closes."""
        sending = threading.Thread(
            target=self.sender.run, args=(stop,), name="notifier-sender", daemon=True
        )
        sending.start()
        log.info("notifier consuming %s as %s", self.topic, self.group_id)
        try:
            while not stop.is_set():
                try:
                    self.process_batch()
                except Exception:
                    # Nothing was committed: the batch comes again after the pause.
                    log.exception("notifier batch failed; retrying")
                    self.close_consumer()
                    stop.wait(2)
        finally:
            stop.set()
            sending.join()
            self.close_consumer()

    def close_consumer(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            try:
                consumer.close()
            except Exception:
                log.warning("closing the consumer failed", exc_info=True)
