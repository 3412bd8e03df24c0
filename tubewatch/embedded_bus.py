"""The embedded default bus: a Kafka-like log in the project's database, for `tubewatch run`.

With no ``TUBEWATCH_KAFKA_BOOTSTRAP`` the services (poller, change engine, notifier) run as
threads of one process on this bus, so tubewatch works on a laptop with no broker. It offers
the surface the services use of the Kafka side (`tubewatch.bus`): a producer with
confluent-kafka's ``produce/poll/flush/len`` and consumers shaped like
`tubewatch.kafka.TypedConsumer` (``poll_batch/commit/close``, malformed values to the
dead-letter topic).

How it works, in the order a record travels:

- ``produce()`` only queues the record in memory. ``flush()`` (or ``poll()`` once the oldest
  queued record is older than ``linger.ms``, 5 ms by default, as librdkafka would send it in
  the background) writes the queue in ONE transaction: per topic, the counter row in
  ``bus_topic`` is advanced first (which takes the write lock: in SQLite the database lock,
  in PostgreSQL the row lock), then the records go to ``bus_record`` with consecutive offsets.
  Offsets therefore grow per topic in commit order, even with several processes writing.
  Delivery callbacks run after the commit, from ``poll()``/``flush()`` as confluent's do.
- After each flush the bus notifies a `threading.Condition`; consumers of the same process
  waiting in ``poll_batch()`` wake at once. Other processes' writes are seen by polling the
  database every ``db_poll_interval_s`` (0.5 s).
- A consumer reads ``offset >= position`` of its one topic (one partition, 0, per topic).
  ``commit()`` stores the position in ``bus_offset`` for its group. A new consumer of the
  group starts from the committed position, so a restarted process sees nothing committed
  again and loses nothing uncommitted (at-least-once, as on Kafka without transactions).
  Within one process, only one consumer per (group, topic) reads at a time, like the one
  partition's owner in a Kafka group; a second one waits idle until the first is closed.
- Retention: records older than their topic's retention (``snapshot_retention_days``;
  ``tubewatch_dlq`` keeps 30 days as on Kafka) are deleted by ``ensure_topics()`` and
  then at most once per ``purge_interval_s`` (an hour) by a flush. Nothing more clever is
  needed: the log is small next to the snapshots the services keep anyway.

Tables (``bus_topic``, ``bus_record``, ``bus_offset``) are SQLModel tables, so Alembic sees
them in ``SQLModel.metadata``; the bus also creates them itself if they are missing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import BigInteger, Index, LargeBinary, delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Column, Field, SQLModel

from tubewatch.kafka import DLQ, DeadLetters, Parsed, contract_topics, flush_or_raise
from tubewatch.messages import MessageError, _Message
from tubewatch.settings import Settings

log = logging.getLogger(__name__)

M = TypeVar("M", bound=_Message)

PARTITION = 0  # one partition per topic is all the embedded bus needs
TIMESTAMP_CREATE_TIME = 1  # confluent_kafka.TIMESTAMP_CREATE_TIME
DEFAULT_RETENTION_DAYS = 30
DAY_MS = 24 * 3600 * 1000

Header = tuple[str, bytes | None]


# -- tables ----------------------------------------------------------------------------------


class BusTopic(SQLModel, table=True):
    """One row per topic: the offset the next record gets (the per-topic write lock)."""

    __tablename__ = "bus_topic"

    name: str = Field(primary_key=True, max_length=249)
    next_offset: int = Field(default=0, sa_type=BigInteger)


class BusRecord(SQLModel, table=True):
    """One record of a topic's log."""

    __tablename__ = "bus_record"
    __table_args__ = (Index("ix_bus_record_timestamp_ms", "timestamp_ms"),)

    topic: str = Field(primary_key=True, max_length=249)
    offset: int = Field(primary_key=True, sa_type=BigInteger)
    key: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    value: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    headers: str | None = Field(default=None, description="JSON [[name, latin-1 value]]")
    timestamp_ms: int = Field(sa_type=BigInteger)  # epoch ms pass 2**31


class BusOffset(SQLModel, table=True):
    """A consumer group's committed position in a topic (the next offset to read)."""

    __tablename__ = "bus_offset"

    group_id: str = Field(primary_key=True, max_length=255)
    topic: str = Field(primary_key=True, max_length=249)
    next_offset: int = Field(sa_type=BigInteger)


_TABLES = [BusTopic.__table__, BusRecord.__table__, BusOffset.__table__]
_TOPIC = BusTopic.__table__
_RECORD = BusRecord.__table__
_OFFSET = BusOffset.__table__


def _encode_headers(headers: list[Header] | None) -> str | None:
    # latin-1 maps every byte to one code point: a lossless, cheap bytes-in-JSON encoding.
    if not headers:
        return None
    return json.dumps([[k, None if v is None else v.decode("latin-1")] for k, v in headers])


def _decode_headers(raw: str | None) -> list[Header] | None:
    if raw is None:
        return None
    return [(k, None if v is None else v.encode("latin-1")) for k, v in json.loads(raw)]


def _as_bytes(data: str | bytes | None) -> bytes | None:
    return data.encode() if isinstance(data, str) else data


def _normalize_headers(headers) -> list[Header] | None:
    """confluent-kafka accepts a dict or a list of pairs, values str or bytes."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(k), _as_bytes(v)) for k, v in pairs]


# -- messages --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmbeddedMessage:
    """A record with confluent-kafka `Message`'s accessors (what callbacks and DLQs read)."""

    _topic: str
    _offset: int
    _key: bytes | None
    _value: bytes | None
    _headers: list[Header] | None
    _timestamp_ms: int

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return PARTITION

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[Header] | None:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return (TIMESTAMP_CREATE_TIME, self._timestamp_ms)

    def error(self) -> None:
        return None

    def __len__(self) -> int:
        return len(self._value or b"")


# -- the bus ---------------------------------------------------------------------------------


class EmbeddedBus:
    """A durable, Kafka-like log in the database behind ``engine`` (see the module docstring).

    ``retention_days``: how long records of the non-DLQ topics are kept.
    ``db_poll_interval_s``: how often a waiting consumer looks for other processes' writes.
    ``purge_interval_s``: the slow cadence of the retention purge after the first one.
    """

    def __init__(
        self,
        engine: Engine,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        db_poll_interval_s: float = 0.5,
        purge_interval_s: float = 3600.0,
    ):
        self.engine = engine
        self.retention_days = retention_days
        self.db_poll_interval_s = db_poll_interval_s
        self.purge_interval_s = purge_interval_s
        self._flushed = threading.Condition()
        self._flush_seq = 0  # bumped (under _flushed) after every committed write
        self._lock = threading.Lock()  # guards the fields below
        self._known_topics: set[str] = set()
        # Weak: a consumer dropped without close() frees its (group, topic) for the next one.
        self._owners: weakref.WeakValueDictionary[tuple[str, str], EmbeddedConsumer] = (
            weakref.WeakValueDictionary()
        )
        self._last_purge = time.monotonic()
        SQLModel.metadata.create_all(engine, tables=_TABLES)

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddedBus:
        from tubewatch.db import get_engine

        return cls(get_engine(settings.database_url), settings.snapshot_retention_days)

    # -- the Bus protocol ----------------------------------------------------------------

    def producer(self, **overrides: object) -> EmbeddedProducer:
        """A producer. Kafka client settings are accepted and ignored, but ``linger.ms``."""
        linger_ms = float(overrides.get("linger.ms", 5))  # type: ignore[arg-type]
        return EmbeddedProducer(self, linger_s=linger_ms / 1000)

    def consumer(
        self,
        group_id: str,
        topic: str,
        model: type[M],
        *,
        dlq_topic: str = DLQ,
        on_revoke=None,
        **overrides: object,
    ) -> EmbeddedConsumer[M]:
        """A typed consumer of ``topic`` in ``group_id`` (Kafka client settings ignored).

        ``on_revoke`` is accepted for the `Bus` protocol and never called: one consumer of a
        group owns the whole topic, and nothing is taken from it while it lives.
        """
        return EmbeddedConsumer(self, group_id, topic, model, dlq_topic)

    def ensure_topics(self) -> None:
        """Create the tables and the contract's topics, and purge what retention expired."""
        SQLModel.metadata.create_all(self.engine, tables=_TABLES)
        for spec in contract_topics(self.retention_days):
            self._ensure_topic(spec.name)
        self.purge_expired()

    def describe(self) -> str:
        url = self.engine.url.render_as_string(hide_password=True)
        return f"embedded bus in {url}"

    # -- writing -------------------------------------------------------------------------

    def _ensure_topic(self, topic: str) -> None:
        """Make the topic's counter row exist (in its own transaction: a race is harmless)."""
        with self._lock:
            if topic in self._known_topics:
                return
        with self.engine.connect() as conn:
            exists = conn.execute(select(_TOPIC.c.name).where(_TOPIC.c.name == topic)).first()
            if not exists:
                try:
                    conn.execute(insert(_TOPIC).values(name=topic, next_offset=0))
                    conn.commit()
                except IntegrityError:  # another process created it first
                    conn.rollback()
        with self._lock:
            self._known_topics.add(topic)

    def write(self, batch: list[_Pending]) -> list[EmbeddedMessage]:
        """Append ``batch`` in one transaction; returns the records with their offsets."""
        by_topic: dict[str, list[_Pending]] = {}
        for pending in batch:
            by_topic.setdefault(pending.topic, []).append(pending)
        for topic in by_topic:
            self._ensure_topic(topic)
        written: list[EmbeddedMessage] = []
        with self.engine.begin() as conn:
            for topic, items in by_topic.items():
                # Advancing the counter first takes the write lock before the offsets are read.
                conn.execute(
                    update(_TOPIC)
                    .where(_TOPIC.c.name == topic)
                    .values(next_offset=_TOPIC.c.next_offset + len(items))
                )
                end = conn.execute(
                    select(_TOPIC.c.next_offset).where(_TOPIC.c.name == topic)
                ).scalar_one()
                base = end - len(items)
                rows = []
                for i, p in enumerate(items):
                    rows.append(
                        {
                            "topic": topic,
                            "offset": base + i,
                            "key": p.key,
                            "value": p.value,
                            "headers": _encode_headers(p.headers),
                            "timestamp_ms": p.timestamp_ms,
                        }
                    )
                    written.append(
                        EmbeddedMessage(topic, base + i, p.key, p.value, p.headers, p.timestamp_ms)
                    )
                conn.execute(insert(_RECORD), rows)
        with self._flushed:
            self._flush_seq += 1
            self._flushed.notify_all()
        if time.monotonic() - self._last_purge >= self.purge_interval_s:
            self.purge_expired()
        return written

    def purge_expired(self) -> int:
        """Delete records older than their topic's retention; returns how many went."""
        self._last_purge = time.monotonic()
        now_ms = int(time.time() * 1000)
        specs = {s.name: s.retention_ms for s in contract_topics(self.retention_days)}
        default_ms = self.retention_days * DAY_MS
        deleted = 0
        with self.engine.begin() as conn:
            topics = conn.execute(select(_TOPIC.c.name)).scalars().all()
            for topic in topics:
                cutoff = now_ms - specs.get(topic, default_ms)
                result = conn.execute(
                    delete(_RECORD).where(_RECORD.c.topic == topic, _RECORD.c.timestamp_ms < cutoff)
                )
                deleted += result.rowcount or 0
        if deleted:
            log.info("embedded bus: purged %d expired records", deleted)
        return deleted

    # -- reading -------------------------------------------------------------------------

    def read(self, topic: str, offset: int, limit: int) -> list[EmbeddedMessage]:
        """Up to ``limit`` records of ``topic`` from ``offset`` on, in offset order."""
        query = (
            select(_RECORD)
            .where(_RECORD.c.topic == topic, _RECORD.c.offset >= offset)
            .order_by(_RECORD.c.offset)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            EmbeddedMessage(
                r.topic, r.offset, r.key, r.value, _decode_headers(r.headers), r.timestamp_ms
            )
            for r in rows
        ]

    def wait_for_flush(self, seen_seq: int, timeout_s: float) -> None:
        """Block until a flush after ``seen_seq`` in this process, or ``timeout_s``."""
        with self._flushed:
            self._flushed.wait_for(lambda: self._flush_seq != seen_seq, timeout_s)

    @property
    def flush_seq(self) -> int:
        with self._flushed:
            return self._flush_seq

    def committed(self, group_id: str, topic: str) -> int | None:
        """The group's committed position in ``topic`` (None when nothing was committed)."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(_OFFSET.c.next_offset).where(
                    _OFFSET.c.group_id == group_id, _OFFSET.c.topic == topic
                )
            ).scalar_one_or_none()

    def store_offset(self, group_id: str, topic: str, next_offset: int) -> None:
        """Commit a group's position (an upsert that tolerates a concurrent first insert)."""
        for _ in range(3):
            with self.engine.connect() as conn:
                try:
                    moved = conn.execute(
                        update(_OFFSET)
                        .where(_OFFSET.c.group_id == group_id, _OFFSET.c.topic == topic)
                        .values(next_offset=next_offset)
                    ).rowcount
                    if not moved:
                        conn.execute(
                            insert(_OFFSET).values(
                                group_id=group_id, topic=topic, next_offset=next_offset
                            )
                        )
                    conn.commit()
                    return
                except IntegrityError:
                    conn.rollback()
        raise RuntimeError(f"could not commit the offset of group {group_id!r} on {topic!r}")

    # -- group membership (one reader per group and topic in this process) ---------------

    def claim(self, consumer: EmbeddedConsumer) -> bool:
        """Whether ``consumer`` owns its (group, topic) now; takes it over when free."""
        key = (consumer.group_id, consumer.topic)
        with self._lock:
            owner = self._owners.get(key)
            if owner is consumer:
                return True
            if owner is None:
                self._owners[key] = consumer
                return True
            return False

    def release(self, consumer: EmbeddedConsumer) -> None:
        key = (consumer.group_id, consumer.topic)
        with self._lock:
            if self._owners.get(key) is consumer:
                del self._owners[key]


# -- producer --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[Header] | None
    timestamp_ms: int
    on_delivery: Callable | None
    queued_at: float


class EmbeddedProducer:
    """confluent-kafka `Producer`'s surface over an `EmbeddedBus`; thread-safe.

    Records are durable once ``flush()`` returned 0 (or after a ``poll()`` that wrote them).
    ``queue_max`` bounds the records held in memory: beyond it ``produce`` raises
    `BufferError`, as confluent's does, and the caller is expected to ``poll()``.
    """

    def __init__(self, bus: EmbeddedBus, linger_s: float = 0.005, queue_max: int = 100_000):
        self.bus = bus
        self.linger_s = linger_s
        self.queue_max = queue_max
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one writer at a time keeps callbacks in order
        self._queue: list[_Pending] = []
        self._callbacks: list[tuple[Callable, EmbeddedMessage]] = []

    def produce(
        self,
        topic: str,
        value: str | bytes | None = None,
        key: str | bytes | None = None,
        partition: int = -1,
        on_delivery: Callable | None = None,
        timestamp: int = 0,
        headers=None,
        callback: Callable | None = None,
    ) -> None:
        if partition not in (-1, PARTITION):
            raise ValueError(f"the embedded bus has one partition per topic, not {partition}")
        pending = _Pending(
            topic,
            _as_bytes(key),
            _as_bytes(value),
            _normalize_headers(headers),
            timestamp or int(time.time() * 1000),
            on_delivery or callback,
            time.monotonic(),
        )
        with self._lock:
            if len(self._queue) >= self.queue_max:
                raise BufferError("embedded producer queue is full: poll() or flush()")
            self._queue.append(pending)

    def poll(self, timeout: float | None = 0) -> int:
        """Serve delivery callbacks; write the queue once it lingered ``linger.ms`` (or is full).

        Like confluent's, it returns as soon as callbacks were served, and otherwise waits up
        to ``timeout`` seconds (None counts as 0 here: nothing else would ever wake it).
        """
        wait_s = 0.0 if timeout is None or timeout < 0 else timeout
        served = self._serve_callbacks()
        if served:
            return served
        with self._lock:
            oldest = self._queue[0].queued_at if self._queue else None
            full = len(self._queue) >= self.queue_max
        if oldest is None:
            if wait_s:
                time.sleep(wait_s)
            return 0
        due_in = 0.0 if full else oldest + self.linger_s - time.monotonic()
        if due_in > wait_s:
            time.sleep(wait_s)
            return 0
        if due_in > 0:
            time.sleep(due_in)
        self._write(wait_s)
        return self._serve_callbacks()

    def flush(self, timeout: float | None = None) -> int:
        """Write everything queued in one transaction; returns how many are still waiting."""
        self._write(timeout)
        self._serve_callbacks()
        return len(self)

    def _write(self, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._write_lock:
            with self._lock:
                batch, self._queue = self._queue, []
            if not batch:
                return
            while True:
                try:
                    written = self.bus.write(batch)
                    break
                except OperationalError as exc:  # e.g. the database is locked or away
                    if deadline is not None and time.monotonic() >= deadline:
                        log.warning("embedded bus: %d records not written yet: %s", len(batch), exc)
                        with self._lock:
                            self._queue[:0] = batch  # keep them, in order, for the next try
                        return
                    time.sleep(0.1)
            with self._lock:
                self._callbacks.extend(
                    (p.on_delivery, m) for p, m in zip(batch, written, strict=True) if p.on_delivery
                )

    def _serve_callbacks(self) -> int:
        with self._lock:
            callbacks, self._callbacks = self._callbacks, []
        for callback, message in callbacks:
            callback(None, message)
        return len(callbacks)

    def __len__(self) -> int:
        with self._lock:
            return len(self._queue) + len(self._callbacks)


# -- consumer --------------------------------------------------------------------------------


class EmbeddedConsumer(Generic[M]):
    """`tubewatch.kafka.TypedConsumer`'s surface over an `EmbeddedBus`; one thread uses it.

    Starts at the group's committed position (or the earliest record). ``commit()`` stores
    the position after everything ``poll_batch()`` returned so far.
    """

    def __init__(
        self,
        bus: EmbeddedBus,
        group_id: str,
        topic: str,
        model: type[M],
        dlq_topic: str = DLQ,
    ):
        self.bus = bus
        self.group_id = group_id
        self.topic = topic
        self.model = model
        self.dead_letters = DeadLetters(bus.producer(), dlq_topic)
        self._position: int | None = None  # None: load the committed one on first claim
        self._committed: int | None = None
        self._closed = False

    def poll_batch(self, max_messages: int = 500, timeout_s: float = 1.0) -> list[Parsed[M]]:
        """Parsed records from the position on: as soon as any exist, or [] after timeout."""
        if self._closed:
            raise RuntimeError("consumer is closed")
        deadline = time.monotonic() + timeout_s
        while True:
            seen = self.bus.flush_seq
            if self._owns():
                records = self.bus.read(self.topic, self._position, max_messages)
                if records:
                    return self._parse(records)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            self.bus.wait_for_flush(seen, min(remaining, self.bus.db_poll_interval_s))

    def _owns(self) -> bool:
        if not self.bus.claim(self):
            return False
        if self._position is None:
            committed = self.bus.committed(self.group_id, self.topic)
            self._position = self._committed = committed or 0
        return True

    def _parse(self, records: Iterable[EmbeddedMessage]) -> list[Parsed[M]]:
        parsed: list[Parsed[M]] = []
        dead = 0
        for record in records:
            try:
                value = self.model.from_bytes(record.value())
            except MessageError as exc:
                self.dead_letters.send(record, str(exc), self.group_id)
                dead += 1
            else:
                parsed.append(
                    Parsed(value, record.topic(), PARTITION, record.offset(), record._timestamp_ms)
                )
            self._position = record.offset() + 1
        if dead:
            flush_or_raise(self.dead_letters.producer)  # durable before the offset moves
        return parsed

    def commit(self) -> None:
        """Make the position after everything returned so far the group's committed one."""
        if self._position is None or self._position == self._committed:
            return
        self.bus.store_offset(self.group_id, self.topic, self._position)
        self._committed = self._position

    def close(self) -> None:
        """Stop reading (nothing is committed) and let another consumer of the group in."""
        if self._closed:
            return
        self._closed = True
        self.dead_letters.producer.flush(10)
        self.bus.release(self)
        self._position = None
