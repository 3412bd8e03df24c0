"""`ChangeEngine` on the real broker: restarts, consumer groups, the DLQ, the database store."""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource
from prometheus_client import REGISTRY
from test_changes_helpers import drain, make_engine, produce_raw, read_all

from tubewatch.backoff import Backoff
from tubewatch.bus import KafkaBus
from tubewatch.changes.engine import ChangeEngine
from tubewatch.changes.logic import apply_snapshot
from tubewatch.changes.state import STATE_SEGMENT_BYTES, STATE_SEGMENT_MS, DatabaseStateStore
from tubewatch.db import get_engine
from tubewatch.messages import MessageError, VideoSnapshot

VIDEOS = [f"video{n:06d}" for n in range(12)]  # 11 characters, like YouTube ids


def snapshots(rounds: int, seed: int, first_round: int = 0) -> list[VideoSnapshot]:
    """``rounds`` polls of every video; counts wander, sometimes stay, sometimes hide."""
    rng = random.Random(seed)
    out = []
    for r in range(first_round, first_round + rounds):
        for vid in VIDEOS:
            out.append(
                VideoSnapshot(
                    video_id=vid,
                    title=f"title {vid}",
                    likes=rng.choice([None, 10, 11, 12]),
                    comments=rng.choice([3, 4]),
                    views=100 + rng.randrange(3),
                    polled_at=f"2026-11-28T12:{r:02d}:00Z",
                )
            )
    return out


def as_records(snaps: list[VideoSnapshot]) -> list[tuple[bytes, bytes]]:
    return [(s.key, s.to_bytes()) for s in snaps]


def expected_changes(snaps: list[VideoSnapshot]) -> dict[bytes, list[bytes]]:
    """Per video, the change values in order (per-key order is all Kafka promises)."""
    state, out = {}, defaultdict(list)
    for offset, s in enumerate(snaps):
        state[s.video_id], change = apply_snapshot(state.get(s.video_id), s, offset)
        if change is not None:
            out[change.key].append(change.to_bytes())
    return dict(out)


def by_key(records: list[tuple[bytes, bytes]]) -> dict[bytes, list[bytes]]:
    out = defaultdict(list)
    for key, value in records:
        out[key].append(value)
    return dict(out)


def new_topics(topic_factory, partitions: int) -> dict[str, str]:
    return {
        "input": topic_factory("chg-in", partitions),
        "output": topic_factory("chg-out"),
        "state": f"chg-state-{uuid.uuid4().hex[:10]}",
        "dlq": topic_factory("chg-dlq"),
    }


ENGINE_METRICS = (
    "tubewatch_changes_aborted_transactions_total",
    "tubewatch_changes_emitted_total",
    "tubewatch_changes_snapshots_total",
    "tubewatch_changes_dead_letters_total",
)


def metric(name: str) -> float:
    """A counter of the process's default registry (the engine's, `tubewatch.changes.metrics`)."""
    return REGISTRY.get_sample_value(name) or 0.0


def test_restart_neither_realerts_nor_misses(kafka_bootstrap, topic_factory):
    topics = new_topics(topic_factory, partitions=3)
    group = f"chg-{uuid.uuid4()}"
    first, second = snapshots(4, seed=1), snapshots(4, seed=2, first_round=4)
    assert expected_changes(first) and expected_changes(first + second) != expected_changes(first)

    produce_raw(kafka_bootstrap, topics["input"], as_records(first))
    engine = make_engine(kafka_bootstrap, topics, group)
    drain([engine], len(first))
    engine.close()
    assert by_key(read_all(kafka_bootstrap, topics["output"])) == expected_changes(first)

    # A new instance: empty memory, state restored from the changelog topic.
    produce_raw(kafka_bootstrap, topics["input"], as_records(second))
    engine = make_engine(kafka_bootstrap, topics, group)
    drain([engine], len(second))
    engine.close()
    assert by_key(read_all(kafka_bootstrap, topics["output"])) == expected_changes(first + second)
    # The changelog holds every video's latest counts.
    assert {k for k, _ in read_all(kafka_bootstrap, topics["state"])} == {
        v.encode() for v in VIDEOS
    }
    # ... in a compacted topic whose segments close early enough to be compacted: a restore
    # reads all of it.
    config = topic_config(kafka_bootstrap, topics["state"])
    assert config["cleanup.policy"] == "compact"
    assert int(config["segment.bytes"]) == STATE_SEGMENT_BYTES
    assert int(config["segment.ms"]) == STATE_SEGMENT_MS


def topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    admin = AdminClient({"bootstrap.servers": bootstrap})  # alive until the answer is in
    entries = admin.describe_configs([resource])[resource].result(30)
    return {name: entry.value for name, entry in entries.items()}


def test_two_instances_split_partitions_and_together_emit_the_changes(
    kafka_bootstrap, topic_factory
):
    topics = new_topics(topic_factory, partitions=4)
    group = f"chg-{uuid.uuid4()}"
    first, second = snapshots(3, seed=3), snapshots(3, seed=9, first_round=3)
    produce_raw(kafka_bootstrap, topics["input"], as_records(first))
    engines = [make_engine(kafka_bootstrap, topics, group)]
    try:
        drain(engines, len(first))  # the first instance owns every partition
        engines.append(make_engine(kafka_bootstrap, topics, group))
        # The second joins: some partitions move over, with their state, from the changelog.
        for _ in range(100):
            for engine in engines:
                engine.step()
            owned = [{tp.partition for tp in e._raw.assignment()} for e in engines]
            if all(owned) and len(owned[0] | owned[1]) == 4:
                break
        assert all(owned) and not owned[0] & owned[1], owned
        # The first instance dropped the state of the partitions it gave away (on_revoke).
        assert set(engines[0]._states) <= owned[0]
        produce_raw(kafka_bootstrap, topics["input"], as_records(second))
        drain(engines, len(first) + len(second))
        assert all(e.snapshots_seen > 0 for e in engines)
        assert all(e.changes_emitted > 0 for e in engines)
    finally:
        for engine in engines:
            engine.close()
    assert by_key(read_all(kafka_bootstrap, topics["output"])) == expected_changes(first + second)


def test_malformed_snapshot_goes_to_the_dlq_and_the_engine_goes_on(kafka_bootstrap, topic_factory):
    topics = new_topics(topic_factory, partitions=1)
    good = snapshots(3, seed=4)
    bad = [(b"video000000", b"{not json"), (b"video000001", b'{"video_id": "x"}')]
    records = as_records(good[:12]) + bad + as_records(good[12:])
    produce_raw(kafka_bootstrap, topics["input"], records)
    engine = make_engine(kafka_bootstrap, topics, f"chg-{uuid.uuid4()}")
    dead_before = metric("tubewatch_changes_dead_letters_total")
    try:
        drain([engine], len(good))
    finally:
        engine.close()
    assert by_key(read_all(kafka_bootstrap, topics["output"])) == expected_changes(good)
    assert read_all(kafka_bootstrap, topics["dlq"]) == bad
    assert metric("tubewatch_changes_dead_letters_total") - dead_before == len(bad)
    # The bad records' offsets were committed with the rest: nothing is left to re-read.
    group_reader = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": engine.group_id})
    [committed] = group_reader.committed([TopicPartition(topics["input"], 0)], timeout=10)
    group_reader.close()
    assert committed.offset == len(records)


def test_one_batch_mixing_good_and_bad_values_keeps_the_models_verdict(
    kafka_bootstrap, topic_factory
):
    """The engine parses raw Kafka messages itself: one batch holding a tombstone, values the
    model refuses (also for a video already in the state, whose id check is skipped), values
    it accepts only on the slow path, and JSON with ``]``/``,`` inside strings."""
    topics = new_topics(topic_factory, partitions=1)
    known = VIDEOS[0]
    first = snapshots(1, seed=5)

    def value(**fields: object) -> bytes:
        base = {"video_id": known, "title": "t", "likes": 10, "comments": 3, "views": 100}
        return json.dumps({**base, "polled_at": "2026-11-28T13:00:00Z", **fields}).encode()

    bad = [
        (known.encode(), None),  # a tombstone
        (known.encode(), value(likes=-1)),  # a known video, a count the model refuses
        (known.encode(), value(polled_at="2026-02-30T13:00:00Z")),  # not a real instant
        (b"short", value(video_id="short")),  # an unknown id the model refuses
        (known.encode(), b'[{"video_id": "' + known.encode() + b'"}]'),  # not an object
    ]
    good = [
        VideoSnapshot.from_bytes(value(title='a "],[" title, with ] and ,', likes=11)),
        # Valid, though not in canonical form: the model's reading decides (12:00 UTC).
        VideoSnapshot.from_bytes(value(likes=12, polled_at="2026-11-28T14:00:00+02:00")),
        VideoSnapshot.from_bytes(value(video_id=VIDEOS[1], likes=None, comments=9)),
    ]
    records = (
        as_records(first)
        + bad[:3]
        + [(good[0].key, value(title='a "],[" title, with ] and ,', likes=11))]
        + bad[3:]
        + [(good[1].key, value(likes=12, polled_at="2026-11-28T14:00:00+02:00"))]
        + as_records(good[2:])
    )
    produce_raw(kafka_bootstrap, topics["input"], records)
    engine = make_engine(kafka_bootstrap, topics, f"chg-{uuid.uuid4()}")
    try:
        drain([engine], len(first) + len(good))
        assert engine.snapshots_seen == len(first) + len(good)
    finally:
        engine.close()
    assert by_key(read_all(kafka_bootstrap, topics["output"])) == expected_changes(first + good)
    assert read_all(kafka_bootstrap, topics["dlq"]) == bad
    reasons = dlq_reasons(kafka_bootstrap, topics["dlq"], len(bad))
    assert reasons[0] == "empty value (tombstone)"
    for (_, raw), reason in zip(bad[1:], reasons[1:], strict=True):
        with pytest.raises(MessageError) as refused:
            VideoSnapshot.from_bytes(raw)
        assert reason == str(refused.value)


def dlq_reasons(bootstrap: str, topic: str, count: int) -> list[str]:
    """The ``tubewatch-error`` headers of the first ``count`` dead letters, in order."""
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4()}"})
    reader.assign([TopicPartition(topic, 0, 0)])
    try:
        records = []
        while len(records) < count:
            records += [r for r in reader.consume(count, timeout=5) if r.error() is None]
    finally:
        reader.close()
    return [dict(r.headers())["tubewatch-error"].decode() for r in records]


def test_database_state_store_at_least_once_survives_restart(
    kafka_bootstrap, topic_factory, database_url
):
    topics = new_topics(topic_factory, partitions=2)
    group = f"chg-{uuid.uuid4()}"
    store = DatabaseStateStore(get_engine(database_url))
    first, second = snapshots(3, seed=5), snapshots(3, seed=6, first_round=3)

    produce_raw(kafka_bootstrap, topics["input"], as_records(first))
    engine = make_engine(kafka_bootstrap, topics, group, state_store=store, transactional=False)
    drain([engine], len(first))
    engine.close()

    produce_raw(kafka_bootstrap, topics["input"], as_records(second))
    store = DatabaseStateStore(get_engine(database_url))  # as after a process restart
    engine = make_engine(kafka_bootstrap, topics, group, state_store=store, transactional=False)
    drain([engine], len(second))
    engine.close()
    assert by_key(read_all(kafka_bootstrap, topics["output"])) == expected_changes(first + second)
    saved = store.load([0, 1])
    assert sum(map(len, saved.values())) == len(VIDEOS)


class FailingCommits:
    """The engine's real producer, except that its first ``failures`` commit_transaction
    calls fail as the broker can make them fail (abortable error) - after everything of the
    batch was produced."""

    def __init__(self, producer, failures: int):
        self._producer = producer
        self.failures_left = failures

    def commit_transaction(self, *args):
        if self.failures_left:
            self.failures_left -= 1
            raise KafkaException(KafkaError(KafkaError._STATE, "injected", txn_requires_abort=True))
        return self._producer.commit_transaction(*args)

    def __getattr__(self, name):
        return getattr(self._producer, name)


def test_aborted_transactions_are_redone_without_duplicates_after_a_growing_wait(
    kafka_bootstrap, topic_factory
):
    topics = new_topics(topic_factory, partitions=2)
    snaps = snapshots(5, seed=7)
    produce_raw(kafka_bootstrap, topics["input"], as_records(snaps))
    slept: list[float] = []
    backoff = Backoff(base_s=0.1, max_s=10, sleep=slept.append, rng=random.Random(3))
    engine = make_engine(kafka_bootstrap, topics, f"chg-{uuid.uuid4()}", abort_backoff=backoff)
    engine.producer = FailingCommits(engine.producer, failures=3)
    before = {name: metric(name) for name in ENGINE_METRICS}
    try:
        drain([engine], len(snaps))
    finally:
        engine.close()
    assert engine.producer.failures_left == 0
    committed = sum(map(len, expected_changes(snaps).values()))
    assert engine.changes_emitted == committed, "aborted changes are not counted"
    assert {name: metric(name) - before[name] for name in ENGINE_METRICS} == {
        "tubewatch_changes_aborted_transactions_total": 3,
        "tubewatch_changes_emitted_total": committed,
        "tubewatch_changes_snapshots_total": len(snaps),
        "tubewatch_changes_dead_letters_total": 0,
    }
    # Three aborts in a row: three waits, each in the upper half of 0.1 s, 0.2 s, 0.4 s.
    assert len(slept) == 3
    assert [0.05 <= slept[0] <= 0.1, 0.1 <= slept[1] <= 0.2, 0.2 <= slept[2] <= 0.4] == [True] * 3
    assert engine.aborts_in_a_row == 0, "a committed batch resets the count"
    # The aborted batches' changes are invisible to read_committed readers; the redo wrote them.
    assert by_key(read_all(kafka_bootstrap, topics["output"])) == expected_changes(snaps)


class NarrowConsumer:
    """A real Kafka consumer seen only through the Bus protocol's consumer surface
    (poll_batch, commit, close), as the embedded default offers it."""

    def __init__(self, typed, commits: bool):
        self._typed = typed
        self._commits = commits

    def poll_batch(self, max_messages=500, timeout_s=1.0):
        return self._typed.poll_batch(max_messages, timeout_s)

    def commit(self):
        if self._commits:  # False: the process "dies" before every offset commit
            self._typed.commit()

    def close(self):
        self._typed.close()


class NarrowBus:
    """A bus that is not a KafkaBus: no transactions, no rebalance callbacks, no tuning."""

    def __init__(self, bootstrap: str, commits: bool = True):
        self._kafka = KafkaBus(bootstrap)
        self._commits = commits

    def producer(self, **overrides):
        assert not overrides, "Kafka-only producer settings passed to a non-Kafka bus"
        return self._kafka.producer()

    def consumer(self, group_id, topic, model, **overrides):
        return NarrowConsumer(self._kafka.consumer(group_id, topic, model), self._commits)


def test_without_transactions_a_replayed_batch_is_not_reported_twice(
    kafka_bootstrap, topic_factory, database_url
):
    topics = new_topics(topic_factory, partitions=1)
    group = f"chg-{uuid.uuid4()}"
    snaps = snapshots(4, seed=8)
    produce_raw(kafka_bootstrap, topics["input"], as_records(snaps))

    def engine_on(bus):
        return ChangeEngine(
            bus,
            group_id=group,
            input_topic=topics["input"],
            output_topic=topics["output"],
            state_store=DatabaseStateStore(get_engine(database_url)),
            poll_timeout_s=0.2,
        )

    # Output flushed and state saved, but the offsets never committed: a crash.
    crashed = engine_on(NarrowBus(kafka_bootstrap, commits=False))
    assert not crashed.transactional
    drain([crashed], len(snaps))
    crashed.close()
    # The next instance re-reads every snapshot from offset 0.
    restarted = engine_on(NarrowBus(kafka_bootstrap))
    drain([restarted], len(snaps))
    restarted.close()
    assert restarted.changes_emitted == 0
    assert by_key(read_all(kafka_bootstrap, topics["output"])) == expected_changes(snaps)
