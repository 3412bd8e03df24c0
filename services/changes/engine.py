"""`ChangeEngine`: consumes `youtube_videos`, keeps per-video state, produces `video_changes`.

Two delivery modes, picked from the bus:

- **Exactly-once on Kafka** (`KafkaBus`): one Kafka transaction per batch holds the changes,
  the state changelog records (`KafkaChangelogStore`) and the consumed offsets
  (``send_offsets_to_transaction``). Consumers that read ``read_committed`` (ours do) never
  see a change twice or lose one, whatever crashes. On an aborted transaction the engine
  reloads its state and rewinds to the committed offsets.
- **At-least-once** (the embedded default, no transactions): changes are flushed, then the
  state is saved (`DatabaseStateStore`), then the offsets are committed. A crash between
  the first and the last step re-emits at most the changes of one batch, byte-identical;
  the notifier dedupes on (video_id, polled_at).

Several engines in one consumer group split the partitions; state follows the partitions
(loaded on a partition's first record, dropped when it is revoked).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict

import msgspec
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from tubewatch.backoff import Backoff
from tubewatch.bus import Bus, KafkaBus
from tubewatch.changes import metrics
from tubewatch.changes.logic import VideoState, change_bytes, detect
from tubewatch.changes.snapshots import VIDEO_ID, Snapshot, fast_decode, is_canonical
from tubewatch.changes.state import (
    STATE_TOPIC,
    KafkaChangelogStore,
    StateStore,
    _produce,
)
from tubewatch.kafka import (
    BACKLOG_FETCH,
    DLQ,
    VIDEO_CHANGES,
    YOUTUBE_VIDEOS,
    flush_or_raise,
)
from tubewatch.messages import MessageError, VideoSnapshot

log = logging.getLogger(__name__)

GROUP_ID = "tubewatch-changes"

# The engine's producer settings on Kafka (the bench gives its bare loop the same ones):
# - batches of up to 1 MB, 20 ms to fill them; one transaction per consumed batch anyway.
# - retries start after 10 ms, not librdkafka's 100 ms (doubling up to 1 s either way). The
#   broker writes a committed transaction's markers after the commit returns; when the next
#   transaction adds its offsets before they are written, the broker answers
#   CONCURRENT_TRANSACTIONS and the client retries. Measured on Kafka 4.1: about one
#   transaction in seven, each stalling 90-140 ms at the default, 13-55 ms at 10 ms.
PRODUCER_TUNING: dict[str, object] = {
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "retry.backoff.ms": 10,
}
# The engine's consumer settings on Kafka (the bench's bare loop gets them too): large
# fetches, since catching up on a backlog is bound by them (`BACKLOG_FETCH`).
CONSUMER_TUNING: dict[str, object] = dict(BACKLOG_FETCH)
# Records per consume() and per transaction: each transaction costs ~5 ms of round trips.
BATCH_SIZE = 5000


class ChangeEngine:
    """The change engine. Build it, then call `run(stop)` or `step()` repeatedly.

    ``bus``: where to read and write. ``state_store``: defaults to the Kafka changelog on a
    `KafkaBus`; other buses need one (``DatabaseStateStore(engine)``). ``transactional``:
    defaults to True exactly on a `KafkaBus`.
    """

    def __init__(
        self,
        bus: Bus,
        *,
        group_id: str = GROUP_ID,
        input_topic: str = YOUTUBE_VIDEOS,
        output_topic: str = VIDEO_CHANGES,
        state_topic: str = STATE_TOPIC,
        dlq_topic: str = DLQ,
        state_store: StateStore | None = None,
        transactional: bool | None = None,
        batch_size: int = BATCH_SIZE,
        poll_timeout_s: float = 0.5,
        abort_backoff: Backoff | None = None,
    ):
        is_kafka = isinstance(bus, KafkaBus)
        self.transactional = is_kafka if transactional is None else transactional
        if state_store is None:
            if not is_kafka:
                raise ValueError("a bus other than Kafka needs a state_store")
            state_store = KafkaChangelogStore(bus.bootstrap, input_topic, state_topic)
        if self.transactional and not isinstance(state_store, KafkaChangelogStore):
            raise ValueError("transactions need the Kafka changelog state store")
        self.store = state_store
        self.group_id = group_id
        self.input_topic = input_topic
        self.output_topic = output_topic
        self.batch_size = batch_size
        self.poll_timeout_s = poll_timeout_s
        # Waits after aborted transactions in a row: a cause that lasts (a deleted output
        # topic, a broker away) must not turn into a hot loop of aborts.
        self.abort_backoff = abort_backoff or Backoff(base_s=0.1, max_s=10)
        self.aborts_in_a_row = 0

        # librdkafka tuning only means something to a Kafka producer.
        producer_config: dict[str, object] = dict(PRODUCER_TUNING) if is_kafka else {}
        if self.transactional:
            producer_config["transactional.id"] = f"{group_id}-{uuid.uuid4().hex}"
            # Bounds how long a crashed instance's open transaction can hold readers back.
            producer_config["transaction.timeout.ms"] = 10_000
        self.producer = bus.producer(**producer_config)
        if self.transactional:
            self.producer.init_transactions(30)
        # `Snapshot`: a fast validated parse, with `VideoSnapshot`'s verdict on every value.
        self.consumer = bus.consumer(
            group_id,
            input_topic,
            Snapshot,
            dlq_topic=dlq_topic,
            on_revoke=self._on_revoke,
            **CONSUMER_TUNING,
        )
        # On Kafka, the confluent-kafka consumer: the engine reads raw messages (`step`).
        self._raw = self.consumer.consumer if is_kafka else None
        self._states: dict[int, dict[str, VideoState]] = {}
        self._sent_positions: dict[int, int] = {}
        self.snapshots_seen = 0
        self.changes_emitted = 0

    # -- rebalancing ---------------------------------------------------------------------

    def _on_revoke(self, _consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._states.pop(tp.partition, None)
            self._sent_positions.pop(tp.partition, None)
        log.info("revoked partitions %s", [tp.partition for tp in partitions])

    def _state_of(self, partition: int) -> dict[str, VideoState]:
        states = self._states.get(partition)
        if states is None:
            # Load every owned partition still missing in one pass: one read of the store.
            missing = {partition}
            if self._raw is not None:
                missing |= {tp.partition for tp in self._raw.assignment()} - set(self._states)
            self._states.update(self.store.load(missing))
            states = self._states[partition]
        return states

    # -- processing ----------------------------------------------------------------------

    def step(self) -> int:
        """Consume one batch, emit its changes, make state and offsets durable.

        Returns the number of snapshots consumed (0 when nothing arrived in time).
        """
        started, emitted_before = time.perf_counter(), self.changes_emitted
        if self._raw is None:  # the embedded bus: parsed records from its consumer
            batch = self.consumer.poll_batch(self.batch_size, self.poll_timeout_s)
        else:  # Kafka: raw messages, parsed in the engine's own loop (`_process_messages`)
            batch = self._raw.consume(num_messages=self.batch_size, timeout=self.poll_timeout_s)
        if not batch and not self._positions_moved():
            return 0
        if self.transactional:
            self.producer.begin_transaction()
        try:
            if self._raw is None:
                updates, seen = self._process(batch), len(batch)
            else:
                updates, seen = self._process_messages(batch)
            positions = self._positions()
            if self.transactional:
                self.store.save(updates, self.producer)
                self.producer.send_offsets_to_transaction(
                    positions, self._raw.consumer_group_metadata(), 30
                )
                self.producer.commit_transaction(30)
            else:
                flush_or_raise(self.producer)  # 1. the changes are acknowledged,
                self.store.save(updates)  # 2. then the state is saved,
                self.consumer.commit()  # 3. then the offsets move on.
            self._sent_positions.update((tp.partition, tp.offset) for tp in positions)
        except KafkaException as exc:
            if not self.transactional:
                raise
            self.changes_emitted = emitted_before  # none of them was committed
            self._abort(exc)
            return 0
        self.aborts_in_a_row = 0
        self.snapshots_seen += seen
        metrics.SNAPSHOTS.inc(seen)
        metrics.CHANGES.inc(self.changes_emitted - emitted_before)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        return seen

    def _process(self, records) -> dict[int, dict[str, VideoState]]:
        """Apply each record to its video's state, produce the changes; returns the states to
        save.

        `detect` gives a new state only when the video is new or its counts moved (see there
        why an older offset is enough); only those are saved, which halves the changelog on
        a typical poll, where most videos did not move.
        """
        updates: dict[int, dict[str, VideoState]] = defaultdict(dict)
        producer, topic = self.producer, self.output_topic
        emitted = 0
        partition, states, saved = None, None, None
        for snapshot, _topic, record_partition, offset, _timestamp in records:
            if record_partition != partition:
                partition = record_partition
                states, saved = self._state_of(partition), updates[partition]
            video_id = snapshot.video_id
            old = states.get(video_id)
            new, changed = detect(old, snapshot, offset)
            if new is old:
                continue
            states[video_id] = saved[video_id] = new  # the last one per video wins
            if changed:
                _produce(producer, topic, video_id.encode(), change_bytes(old, snapshot))
                emitted += 1
        self.changes_emitted += emitted
        return updates

    def _process_messages(self, messages) -> tuple[dict[int, dict[str, VideoState]], int]:
        """`_process` for raw confluent-kafka messages: parse, validate and apply in one pass.

        The per-record cost is the engine's whole throughput, so this loop reads each
        message's value, partition and offset once, builds no intermediate record, and skips
        the video id check for a video already in the state (its id passed the check when
        its first snapshot was read). Values the fast decoder is not certain about go to
        `VideoSnapshot.from_bytes` (pydantic's verdict); refused ones to the dead-letter topic,
        made durable before the offsets are committed. Returns the states to save and the
        number of snapshots read.
        """
        updates: dict[int, dict[str, VideoState]] = defaultdict(dict)
        producer, topic = self.producer, self.output_topic
        produce = producer.produce
        decode, valid_id, canonical = fast_decode, VIDEO_ID.fullmatch, is_canonical
        emitted = errors = dead = 0  # snapshots read: the rest of the messages
        partition, states, saved = None, None, None
        # The polled_at last found canonical: a poll's snapshots share it, so most records
        # need only a string comparison.
        known_polled_at = None
        for message in messages:
            if message.error() is not None:
                self._consumer_error(message.error())
                errors += 1
                continue
            value = message.value()
            try:
                snapshot = decode(value)
            except (msgspec.DecodeError, ValueError, TypeError):  # TypeError: a tombstone
                snapshot = None
            record_partition = message.partition()
            if record_partition != partition:
                partition = record_partition
                states, saved = self._state_of(partition), updates[partition]
            if snapshot is not None:
                video_id = snapshot.video_id
                old = states.get(video_id)
                if old is None and not valid_id(video_id):
                    snapshot = None
                elif snapshot.polled_at != known_polled_at:
                    if canonical(snapshot.polled_at):
                        known_polled_at = snapshot.polled_at
                    else:
                        snapshot = None
            if snapshot is None:  # not certainly valid: the model decides
                try:
                    snapshot = Snapshot.from_model(VideoSnapshot.from_bytes(value))
                except MessageError as exc:
                    self.consumer.dead_letters.send(message, str(exc), self.group_id)
                    dead += 1
                    continue
                video_id = snapshot.video_id
                old = states.get(video_id)
            if (
                old is not None
                and snapshot.likes == old.likes
                and snapshot.comments == old.comments
                and snapshot.views == old.views
            ):  # `detect`'s common case, without the call: no count moved, nothing to do
                continue
            new, changed = detect(old, snapshot, message.offset())
            if new is old:
                continue
            states[video_id] = saved[video_id] = new  # the last one per video wins
            if changed:
                key, change = video_id.encode(), change_bytes(old, snapshot)
                try:
                    produce(topic, change, key)
                except BufferError:  # the queue is full: wait for room
                    _produce(producer, topic, key, change)
                emitted += 1
        if dead:
            flush_or_raise(self.consumer.dead_letters.producer)
            metrics.DEAD_LETTERS.inc(dead)
        self.changes_emitted += emitted
        return updates, len(messages) - errors - dead

    @staticmethod
    def _consumer_error(error: KafkaError) -> None:
        """A consumer error event: end-of-partition is no error, retriable ones are logged."""
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal() or not error.retriable():
            raise KafkaException(error)
        log.warning("consumer error (retriable): %s", error)

    def _positions(self) -> list[TopicPartition]:
        """The consumer's next offsets in its partitions (none known on a non-Kafka bus)."""
        if self._raw is None:
            return []
        return [tp for tp in self._raw.position(self._raw.assignment()) if tp.offset >= 0]

    def _positions_moved(self) -> bool:
        """Whether the consumer moved past dead-lettered records (their offsets need a commit)."""
        return any(tp.offset != self._sent_positions.get(tp.partition) for tp in self._positions())

    def _abort(self, exc: KafkaException) -> None:
        """Undo a failed batch: abort, forget state, go back to the committed offsets."""
        error = exc.args[0]
        if getattr(error, "fatal", lambda: False)():
            raise exc
        delay = self.abort_backoff.delay(self.aborts_in_a_row)
        self.aborts_in_a_row += 1
        metrics.ABORTS.inc()
        log.warning(
            "transaction failed (%d in a row), rewinding, next try in %.1fs: %s",
            self.aborts_in_a_row,
            delay,
            error,
        )
        self.producer.abort_transaction(30)
        self._states.clear()
        self._sent_positions.clear()
        assignment = self._raw.assignment()
        if assignment:
            for tp in self._raw.committed(assignment, timeout=30):
                self._raw.seek(TopicPartition(tp.topic, tp.partition, max(tp.offset, 0)))
        self.abort_backoff.sleep(delay)

    def run(self, stop: threading.Event) -> None:
        """Process batches until ``stop`` is set; the batch in flight is finished first."""
        log.info(
            "change engine: %s -> %s (%s, group %s)",
            self.input_topic,
            self.output_topic,
            "exactly-once" if self.transactional else "at-least-once",
            self.group_id,
        )
        try:
            while not stop.is_set():
                self.step()
        finally:
            self.close()

    def close(self) -> None:
        self.consumer.close()
        self.producer.flush(10)
