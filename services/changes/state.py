"""Where the change engine keeps each video's `VideoState` so it survives restarts.

State is partitioned like the input topic: the engine loads the state of an input partition
the first time it sees a record from it, and forgets it when the partition is revoked.

- `KafkaChangelogStore` (the default on Kafka): a compacted topic, key = video id, value =
  `VideoState.to_bytes()`, written to the same partition number as the input record that
  produced it. Its writes go through the engine's transactional producer, in the same
  transaction as the changes and the consumed offsets, so state, output and offsets move
  together or not at all. Loading a partition reads it from the beginning (read_committed).
  Rebuildable from Kafka alone.
- `DatabaseStateStore` (the embedded default, or any bus without transactions): one row per
  video in ``change_state``. The engine saves it after its output is flushed and before it
  commits offsets; the offset kept in each state turns a re-read snapshot into a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from sqlalchemy import BigInteger
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

from tubewatch.changes.logic import VideoState
from tubewatch.kafka import BACKLOG_FETCH, TopicSpec, ensure_topics, make_consumer

log = logging.getLogger(__name__)

STATE_TOPIC = "tubewatch_changes_state"
# The changelog's segments close after 16 MB (about 1M states, lz4) or an hour, whichever
# comes first, so the broker compacts all but the newest hour: a restore reads about one
# record per video plus at most 1M per partition (~2 s each at 480k records/s).
STATE_SEGMENT_BYTES = 16 * 1024 * 1024
STATE_SEGMENT_MS = 3600_000

# The restore's consumer settings (assign() from offset 0 to each partition's end, big fetches).
RESTORE_READER: dict[str, object] = {
    "enable.partition.eof": True,
    "fetch.wait.max.ms": 10,
    **BACKLOG_FETCH,
}

PartitionStates = dict[int, dict[str, VideoState]]


class StateStore(Protocol):
    def load(self, partitions: Iterable[int]) -> PartitionStates:
        """The saved state of every video in these input partitions."""
        ...

    def save(self, updates: Mapping[int, Mapping[str, VideoState]], producer=None) -> None:
        """Make these states durable (through ``producer``'s open transaction on Kafka)."""
        ...


class KafkaChangelogStore:
    """State in a compacted Kafka topic co-partitioned with the input topic."""

    def __init__(self, bootstrap: str, input_topic: str, state_topic: str = STATE_TOPIC):
        self.bootstrap = bootstrap
        self.state_topic = state_topic
        self._ensure_topic(input_topic)

    def _ensure_topic(self, input_topic: str) -> None:
        """Create the changelog with the input's partition count; refuse one that is too small."""
        topics = AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(timeout=30).topics
        if input_topic not in topics:
            raise RuntimeError(f"input topic {input_topic!r} does not exist")
        wanted = len(topics[input_topic].partitions)
        if self.state_topic in topics:
            have = len(topics[self.state_topic].partitions)
            if have < wanted:
                raise RuntimeError(
                    f"state topic {self.state_topic!r} has {have} partitions, "
                    f"input {input_topic!r} has {wanted}: they must match"
                )
            return
        # Restoring reads the whole changelog, and the broker compacts only closed segments.
        # With the broker's 1 GB / 7 day segments, a restore read up to a week of updates;
        # see STATE_SEGMENT_BYTES.
        spec = TopicSpec(
            self.state_topic,
            retention_ms=-1,
            cleanup_policy="compact",
            extra={
                "min.compaction.lag.ms": "0",
                "segment.bytes": str(STATE_SEGMENT_BYTES),
                "segment.ms": str(STATE_SEGMENT_MS),
            },
        )
        ensure_topics(self.bootstrap, [spec], partitions=wanted)

    def load(self, partitions: Iterable[int]) -> PartitionStates:
        wanted = sorted(set(partitions))
        states: PartitionStates = {p: {} for p in wanted}
        if not wanted:
            return states
        reader = make_consumer(
            self.bootstrap,
            f"{self.state_topic}-restore",  # assign() only: this group never commits
            **RESTORE_READER,
        )
        try:
            reader.assign(
                [TopicPartition(self.state_topic, p, 0) for p in wanted]  # 0: from the start
            )
            pending = set(wanted)
            while pending:
                for record in reader.consume(num_messages=5000, timeout=1.0):
                    error = record.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            pending.discard(record.partition())
                            continue
                        raise KafkaException(error)
                    key = record.key().decode()
                    if record.value() is None:
                        states[record.partition()].pop(key, None)
                    else:
                        states[record.partition()][key] = VideoState.from_bytes(record.value())
        finally:
            reader.close()
        log.info(
            "restored state of %d videos for partitions %s",
            sum(map(len, states.values())),
            wanted,
        )
        return states

    def save(self, updates: Mapping[int, Mapping[str, VideoState]], producer=None) -> None:
        if producer is None:
            raise ValueError("the Kafka changelog is written through the engine's producer")
        # Runs for about half of all snapshots: positional arguments, bound names.
        produce, topic = producer.produce, self.state_topic
        for partition, videos in updates.items():
            for video_id, state in videos.items():
                key, value = video_id.encode(), state.to_bytes()
                try:
                    produce(topic, value, key, partition)
                except BufferError:  # the queue is full: wait for room
                    _produce(producer, topic, key, value, partition)


def _produce(producer, topic: str, key: bytes, value: bytes, partition: int | None = None):
    """Produce one record, waiting for room in the queue when it is full."""
    kwargs = {} if partition is None else {"partition": partition}
    while True:
        try:
            producer.produce(topic, key=key, value=value, **kwargs)
            return
        except BufferError:
            producer.poll(0.05)


class ChangeState(SQLModel, table=True):
    """The database form of one video's `VideoState` (`DatabaseStateStore`)."""

    __tablename__ = "change_state"

    video_id: str = Field(primary_key=True)
    partition: int = Field(index=True, description="input partition the state belongs to")
    likes: int | None = Field(default=None, sa_type=BigInteger)  # counts pass 2**31
    comments: int | None = Field(default=None, sa_type=BigInteger)
    views: int | None = Field(default=None, sa_type=BigInteger)
    input_offset: int = Field(
        sa_type=BigInteger, description="offset of the snapshot the counts come from"
    )


class DatabaseStateStore:
    """State in the SQLModel database, for buses without transactions (the embedded default)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        ChangeState.__table__.create(engine, checkfirst=True)

    def load(self, partitions: Iterable[int]) -> PartitionStates:
        wanted = sorted(set(partitions))
        states: PartitionStates = {p: {} for p in wanted}
        with Session(self.engine) as session:
            rows = session.exec(select(ChangeState).where(ChangeState.partition.in_(wanted)))
            for row in rows:
                states[row.partition][row.video_id] = VideoState(
                    row.likes, row.comments, row.views, row.input_offset
                )
        return states

    def save(self, updates: Mapping[int, Mapping[str, VideoState]], producer=None) -> None:
        """One upsert statement for the whole batch (SQLite and PostgreSQL both speak
        ``INSERT … ON CONFLICT DO UPDATE``); a `session.merge` per video, a SELECT and a
        write each, was 95% of the embedded engine's time."""
        rows = [
            {
                "video_id": video_id,
                "partition": partition,
                "likes": state.likes,
                "comments": state.comments,
                "views": state.views,
                "input_offset": state.offset,
            }
            for partition, videos in updates.items()
            for video_id, state in videos.items()
        ]
        if not rows:
            return
        insert = _UPSERT_INSERTS.get(self.engine.dialect.name)
        if insert is None:  # another database: the portable way, one merge per video
            with Session(self.engine) as session:
                for row in rows:
                    session.merge(ChangeState(**row))
                session.commit()
            return
        table = ChangeState.__table__
        statement = insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.video_id],
            set_={name: statement.excluded[name] for name in rows[0] if name != "video_id"},
        )
        with self.engine.begin() as connection:
            connection.execute(statement, rows)


# The databases tubewatch runs on (Settings.database_url), each with its upsert.
_UPSERT_INSERTS = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}
