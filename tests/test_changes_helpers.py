"""Helpers for the change-engine tests on the real broker (no tests here)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, TopicPartition

from tubewatch.bus import KafkaBus
from tubewatch.changes.engine import ChangeEngine
from tubewatch.kafka import flush_or_raise, make_producer

KSQL_TESTS = Path(__file__).resolve().parent.parent / "ksql" / "tests"


def compact(value: object) -> bytes:
    """A fixture's JSON value as ksqlDB writes it: compact, fields in the file's order."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def load_case(name: str) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """A ksql/tests case as (key, value) bytes: its inputs and its expected outputs."""
    inputs = json.loads((KSQL_TESTS / name / "input.json").read_text())["inputs"]
    outputs = json.loads((KSQL_TESTS / name / "output.json").read_text())["outputs"]
    return (
        [(r["key"].encode(), compact(r["value"])) for r in inputs],
        [(r["key"].encode(), compact(r["value"])) for r in outputs],
    )


def produce_raw(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = make_producer(bootstrap)
    for key, value in records:
        producer.produce(topic, key=key, value=value)
    flush_or_raise(producer)


def read_all(bootstrap: str, topic: str, timeout_s: float = 20) -> list[tuple[bytes, bytes]]:
    """Every committed record of ``topic``, partition by partition, in offset order."""
    reader = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"read-{uuid.uuid4()}",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = reader.list_topics(topic, timeout=10).topics[topic].partitions
        reader.assign([TopicPartition(topic, p, 0) for p in partitions])
        pending = set(partitions)
        got: list[tuple[int, int, bytes, bytes]] = []
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for record in reader.consume(500, timeout=0.5):
                if record.error():
                    if record.error().code() == KafkaError._PARTITION_EOF:
                        pending.discard(record.partition())
                    continue
                got.append((record.partition(), record.offset(), record.key(), record.value()))
        assert not pending, f"could not read {topic} to its end"
    finally:
        reader.close()
    return [(key, value) for _, _, key, value in sorted(got)]


def make_engine(bootstrap: str, topics: dict[str, str], group: str, **kwargs) -> ChangeEngine:
    return ChangeEngine(
        KafkaBus(bootstrap),
        group_id=group,
        input_topic=topics["input"],
        output_topic=topics["output"],
        state_topic=topics["state"],
        dlq_topic=topics["dlq"],
        poll_timeout_s=0.2,
        **kwargs,
    )


def drain(engines: list[ChangeEngine], want_seen: int, timeout_s: float = 30) -> None:
    """Step the engines until together they have consumed ``want_seen`` snapshots, then a bit
    more so that anything extra they would emit has a chance to appear."""
    deadline = time.monotonic() + timeout_s
    while sum(e.snapshots_seen for e in engines) < want_seen:
        assert time.monotonic() < deadline, "engines did not consume their input in time"
        for engine in engines:
            engine.step()
    for _ in range(2):
        for engine in engines:
            engine.step()
