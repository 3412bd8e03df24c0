"""The bus contract, written once and run on both buses so they cannot drift apart.

`KafkaBus` runs against the real broker (unique topics from ``topic_factory``), `EmbeddedBus`
against a real SQLite file. Tests at the end cover what only the embedded bus promises:
in-process wake-up on flush, durability across instances, retention.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from tubewatch.bus import KafkaBus, bus_from_settings
from tubewatch.db import get_engine
from tubewatch.embedded_bus import BusRecord, EmbeddedBus
from tubewatch.kafka import make_consumer
from tubewatch.messages import VideoSnapshot
from tubewatch.settings import Settings


def snapshot(n: int, likes: int | None = 10) -> VideoSnapshot:
    return VideoSnapshot(
        video_id=f"vid{n:08d}",
        title=f"Video {n} — ünïcode",
        channel_title="chan",
        thumbnail="https://i.ytimg.com/x.jpg",
        likes=likes,
        comments=None,
        views=1000 + n,
        favorites=0,
        polled_at=datetime(2026, 11, 28, 12, 0, n % 60, tzinfo=UTC),
    )


class BusUnderTest:
    """A bus plus the means to make topics and read raw records, whatever the bus."""

    def __init__(self, kind: str, request):
        self.kind = kind
        if kind == "kafka":
            self.bootstrap = request.getfixturevalue("kafka_bootstrap")
            self.topic_factory = request.getfixturevalue("topic_factory")
            self.bus = KafkaBus(self.bootstrap)
        else:
            self.bus = EmbeddedBus(get_engine(request.getfixturevalue("database_url")))

    def topic(self, base: str) -> str:
        if self.kind == "kafka":
            return self.topic_factory(base)
        return f"{base}-{uuid.uuid4().hex[:10]}"

    def group(self) -> str:
        return f"test-bus-{uuid.uuid4().hex[:10]}"

    def read_raw(self, topic: str, count: int, timeout_s: float = 20):
        """The first ``count`` records of ``topic`` as confluent-style messages."""
        if self.kind == "embedded":
            return self.bus.read(topic, 0, count)
        consumer = make_consumer(self.bootstrap, self.group())
        consumer.subscribe([topic])
        found = []
        deadline = time.monotonic() + timeout_s
        try:
            while len(found) < count and time.monotonic() < deadline:
                for message in consumer.consume(count - len(found), 0.5):
                    if message.error() is None:
                        found.append(message)
        finally:
            consumer.close()
        return found


@pytest.fixture(params=["embedded", "kafka"])
def under_test(request) -> BusUnderTest:
    return BusUnderTest(request.param, request)


def produce(bus, topic: str, snapshots, extra: list[tuple[bytes, bytes]] = ()) -> list:
    """Produce the snapshots (and raw key/value pairs), flush; returns the delivery reports."""
    producer = bus.producer()
    reports = []
    for snap in snapshots:
        producer.produce(
            topic,
            key=snap.key,
            value=snap.to_bytes(),
            on_delivery=lambda err, msg: reports.append((err, msg)),
        )
    for key, value in extra:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0
    assert len(producer) == 0
    return reports


def drain(consumer, count: int, timeout_s: float = 20) -> list:
    """Poll until ``count`` records arrived (or the time is up)."""
    records = []
    deadline = time.monotonic() + timeout_s
    while len(records) < count and time.monotonic() < deadline:
        records.extend(consumer.poll_batch(500, 0.5))
    return records


def test_round_trip_equal_values_and_delivery_reports(under_test):
    topic = under_test.topic("bus-roundtrip")
    sent = [snapshot(i) for i in range(20)] + [snapshot(99, likes=None)]
    reports = produce(under_test.bus, topic, sent)

    assert [err for err, _ in reports] == [None] * len(sent)
    assert [msg.topic() for _, msg in reports] == [topic] * len(sent)
    assert [msg.key() for _, msg in reports] == [s.key for s in sent]
    offsets = [msg.offset() for _, msg in reports]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(sent)

    consumer = under_test.bus.consumer(under_test.group(), topic, VideoSnapshot)
    try:
        got = drain(consumer, len(sent))
        assert [r.value for r in got] == sent
        assert [r.offset for r in got] == offsets
        assert {r.topic for r in got} == {topic} and {r.partition for r in got} == {0}
        assert all(r.timestamp_ms > 0 for r in got)
        assert consumer.poll_batch(500, 0.3) == []
    finally:
        consumer.close()


def test_malformed_values_go_to_the_dlq_and_the_consumer_goes_on(under_test):
    topic, dlq = under_test.topic("bus-malformed"), under_test.topic("bus-dlq")
    bad = [(b"badjson0001", b"{not json"), (b"badfield002", b'{"video_id": "short"}')]
    produce(under_test.bus, topic, [snapshot(1)], extra=bad)
    produce(under_test.bus, topic, [snapshot(2)])

    group = under_test.group()
    consumer = under_test.bus.consumer(group, topic, VideoSnapshot, dlq_topic=dlq)
    try:
        got = drain(consumer, 2)
        assert [r.value.video_id for r in got] == ["vid00000001", "vid00000002"]
    finally:
        consumer.close()

    dead = under_test.read_raw(dlq, 2)
    assert [m.key() for m in dead] == [k for k, _ in bad]
    assert [m.value() for m in dead] == [v for _, v in bad]
    for message in dead:
        headers = dict(message.headers())
        assert headers["tubewatch-source-topic"] == topic.encode()
        assert headers["tubewatch-source-partition"] == b"0"
        assert headers["tubewatch-consumer-group"] == group.encode()
        assert int(headers["tubewatch-source-offset"]) in (1, 2)
    assert b"invalid youtube_videos" in dict(dead[1].headers())["tubewatch-error"]


def test_committed_records_are_not_seen_again_uncommitted_ones_are(under_test):
    topic, group = under_test.topic("bus-commit"), under_test.group()
    produce(under_test.bus, topic, [snapshot(i) for i in range(5)])

    first = under_test.bus.consumer(group, topic, VideoSnapshot)
    try:
        assert len(drain(first, 5)) == 5
        first.commit()
    finally:
        first.close()

    produce(under_test.bus, topic, [snapshot(i) for i in range(5, 8)])
    second = under_test.bus.consumer(group, topic, VideoSnapshot)
    try:
        got = drain(second, 3)
        assert [r.value.video_id for r in got] == [f"vid{i:08d}" for i in range(5, 8)]
        # read, but not committed: the next member of the group gets them again
    finally:
        second.close()

    third = under_test.bus.consumer(group, topic, VideoSnapshot)
    try:
        again = drain(third, 3)
        assert [r.value.video_id for r in again] == [f"vid{i:08d}" for i in range(5, 8)]
        assert third.poll_batch(500, 0.3) == []
    finally:
        third.close()


def test_two_groups_each_see_everything(under_test):
    topic = under_test.topic("bus-groups")
    sent = [snapshot(i) for i in range(6)]
    produce(under_test.bus, topic, sent)
    consumers = [under_test.bus.consumer(under_test.group(), topic, VideoSnapshot) for _ in "ab"]
    try:
        for consumer in consumers:
            assert [r.value for r in drain(consumer, 6)] == sent
    finally:
        for consumer in consumers:
            consumer.close()


# -- what only the embedded bus promises ------------------------------------------------------


@pytest.fixture
def embedded(database_url) -> EmbeddedBus:
    return EmbeddedBus(get_engine(database_url), db_poll_interval_s=0.5)


def test_bus_from_settings_picks_the_embedded_bus_without_a_bootstrap(database_url):
    bus = bus_from_settings(Settings(database_url=database_url, kafka_bootstrap=None))
    assert isinstance(bus, EmbeddedBus)
    assert bus.describe() == f"embedded bus in {database_url}"
    bus.ensure_topics()  # creates the contract's topics; idempotent
    bus.ensure_topics()


def test_describe_hides_the_database_password():
    bus = EmbeddedBus.__new__(EmbeddedBus)
    from sqlalchemy import create_engine

    bus.engine = create_engine("postgresql+psycopg://tw:s3cr3t-pw@db:5432/tw")
    assert "s3cr3t-pw" not in bus.describe()


def test_a_waiting_consumer_wakes_when_another_thread_flushes(embedded):
    topic = "bus-wake"
    consumer = embedded.consumer("g-wake", topic, VideoSnapshot)
    assert consumer.poll_batch(10, 0.05) == []  # joined, nothing yet
    result: dict[str, object] = {}

    def wait():
        started = time.monotonic()
        result["records"] = consumer.poll_batch(10, 5.0)
        result["waited"] = time.monotonic() - started

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)  # the consumer is now blocked in poll_batch
    flushed_at = time.monotonic()
    produce(embedded, topic, [snapshot(1)])
    waiter.join(10)
    assert [r.value for r in result["records"]] == [snapshot(1)]
    # Loose bound: a wake-up takes milliseconds; the 5 s timeout must not be what returned.
    assert time.monotonic() - flushed_at < 1.5
    assert result["waited"] < 3.0
    consumer.close()


def test_records_from_another_bus_instance_arrive_by_database_polling(database_url):
    reader_bus = EmbeddedBus(get_engine(database_url), db_poll_interval_s=0.1)
    # A second engine on the same file stands for another process: no shared Condition.
    from sqlalchemy import create_engine

    writer_bus = EmbeddedBus(create_engine(database_url))
    consumer = reader_bus.consumer("g-xproc", "bus-xproc", VideoSnapshot)
    threading.Timer(0.3, lambda: produce(writer_bus, "bus-xproc", [snapshot(3)])).start()
    got = consumer.poll_batch(10, 5.0)
    assert [r.value for r in got] == [snapshot(3)]
    consumer.close()


def test_records_and_offsets_survive_a_new_bus_instance(database_url):
    from sqlalchemy import create_engine

    first = EmbeddedBus(create_engine(database_url))
    produce(first, "bus-durable", [snapshot(i) for i in range(4)])
    consumer = first.consumer("g-durable", "bus-durable", VideoSnapshot)
    assert len(drain(consumer, 4)) == 4
    consumer.commit()
    first.engine.dispose()  # the process "ends" (without closing the consumer)

    second = EmbeddedBus(create_engine(database_url))
    produce(second, "bus-durable", [snapshot(9)])
    resumed = second.consumer("g-durable", "bus-durable", VideoSnapshot)
    assert [r.value for r in drain(resumed, 1)] == [snapshot(9)]
    assert resumed.poll_batch(10, 0.2) == []
    fresh = second.consumer("g-other", "bus-durable", VideoSnapshot)
    got = drain(fresh, 5)
    assert [r.offset for r in got] == [0, 1, 2, 3, 4]  # offsets continue per topic


def test_a_second_consumer_of_a_group_waits_until_the_first_closes(embedded):
    produce(embedded, "bus-owner", [snapshot(1)])
    first = embedded.consumer("g-owner", "bus-owner", VideoSnapshot)
    second = embedded.consumer("g-owner", "bus-owner", VideoSnapshot)
    assert len(first.poll_batch(10, 1.0)) == 1
    assert second.poll_batch(10, 0.2) == []  # the "partition" belongs to the first
    first.close()  # not committed: the second gets the record again
    assert [r.value for r in second.poll_batch(10, 1.0)] == [snapshot(1)]


def test_poll_writes_lingering_records_and_serves_callbacks(embedded):
    producer = embedded.producer(**{"linger.ms": 0})
    delivered = []
    producer.produce("bus-poll", key="k", value="v", on_delivery=lambda e, m: delivered.append(m))
    assert producer.poll(0) == 1
    assert [(m.key(), m.value(), m.offset(), m.error()) for m in delivered] == [
        (b"k", b"v", 0, None)
    ]
    assert [m.value() for m in embedded.read("bus-poll", 0, 10)] == [b"v"]


def test_poll_waits_for_the_linger_before_writing(embedded):
    producer = embedded.producer(**{"linger.ms": 200})
    producer.produce("bus-linger", value="v")
    assert producer.poll(0) == 0  # not due yet: nothing written, nothing served
    assert embedded.read("bus-linger", 0, 10) == []
    assert len(producer) == 1
    producer.poll(1.0)  # waits out the linger, then writes
    assert [m.value() for m in embedded.read("bus-linger", 0, 10)] == [b"v"]
    assert len(producer) == 0


def test_a_consumer_dropped_without_close_frees_its_group(embedded):
    import gc

    produce(embedded, "bus-drop", [snapshot(1)])
    first = embedded.consumer("g-drop", "bus-drop", VideoSnapshot)
    assert len(first.poll_batch(10, 1.0)) == 1
    del first
    gc.collect()
    second = embedded.consumer("g-drop", "bus-drop", VideoSnapshot)
    assert [r.value for r in second.poll_batch(10, 1.0)] == [snapshot(1)]


def test_a_full_queue_raises_buffer_error_until_polled(embedded):
    producer = embedded.producer()
    producer.queue_max = 3
    for i in range(3):
        producer.produce("bus-full", value=str(i))
    with pytest.raises(BufferError):
        producer.produce("bus-full", value="3")
    producer.poll(0)  # a full queue is written at once
    producer.produce("bus-full", value="3")
    assert producer.flush() == 0
    assert [m.value() for m in embedded.read("bus-full", 0, 10)] == [b"0", b"1", b"2", b"3"]


def test_retention_purges_old_records_only(embedded):
    produce(embedded, "bus-retention", [snapshot(i) for i in range(3)])
    old_ms = int((time.time() - 31 * 24 * 3600) * 1000)
    with embedded.engine.begin() as conn:
        conn.execute(
            update(BusRecord.__table__)
            .where(BusRecord.__table__.c.offset < 2)
            .values(timestamp_ms=old_ms)
        )
    embedded.ensure_topics()  # purges
    assert [m.offset() for m in embedded.read("bus-retention", 0, 10)] == [2]
    consumer = embedded.consumer("g-retention", "bus-retention", VideoSnapshot)
    assert [r.offset for r in drain(consumer, 1)] == [2]


WRITER = """
import sys
from sqlalchemy import create_engine
from tubewatch.embedded_bus import EmbeddedBus
bus = EmbeddedBus(create_engine(sys.argv[1], connect_args={"timeout": 30}))
producer = bus.producer()
for batch in range(10):
    for i in range(50):
        producer.produce("bus-procs", key=sys.argv[2], value=f"{batch * 50 + i}")
    assert producer.flush(30) == 0
"""


def test_concurrent_writer_processes_get_distinct_consecutive_offsets(database_url):
    EmbeddedBus(get_engine(database_url))  # creates the tables once
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, database_url, name]) for name in "ab"
    ]
    assert [w.wait(60) for w in writers] == [0, 0]
    records = EmbeddedBus(get_engine(database_url)).read("bus-procs", 0, 5000)
    assert [m.offset() for m in records] == list(range(1000))
    for name in (b"a", b"b"):
        mine = [int(m.value()) for m in records if m.key() == name]
        assert mine == list(range(500))  # each writer's order is kept


def test_the_change_engine_runs_on_the_embedded_bus(embedded):
    from tubewatch.changes.engine import ChangeEngine
    from tubewatch.changes.state import DatabaseStateStore
    from tubewatch.messages import VideoChange

    produce(embedded, "bus-in", [snapshot(1, likes=n) for n in (1, 2, 2, 5)])
    engine = ChangeEngine(
        embedded,
        group_id="g-engine",
        input_topic="bus-in",
        output_topic="bus-out",
        state_store=DatabaseStateStore(embedded.engine),
    )
    assert engine.step() == 4
    changes = embedded.consumer("g-check", "bus-out", VideoChange)
    got = [(r.value.likes_previous, r.value.likes_current) for r in drain(changes, 2)]
    assert got == [(1, 2), (2, 5)]
    assert embedded.committed("g-engine", "bus-in") == 4
