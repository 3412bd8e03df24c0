"""Change-engine state restore on a real broker against a bare read of the same changelog.

    python bench/bench_state_restore.py --bootstrap 127.0.0.1:19092 [--n 1000000]
                                        [--videos 100000] [--rounds 5]

A restarted engine, or one handed partitions in a rebalance, reads its state changelog from
the start before it emits anything (`KafkaChangelogStore.load`). This writes N changelog
records over K videos (each video updated N/K times, as the engine writes them) into a fresh
compacted 6-partition topic, then alternates, ``--rounds`` times:

- ``bare``: a consumer with the restore's settings reads every partition from offset 0 to
  its end and touches each record's key and value: the least any restore does.
- ``restore``: `KafkaChangelogStore.load` of all six partitions (decode each value, keep the
  latest state per video).

Reported: each run's records/s, the medians and the median of the per-round ratios
(restore / bare). The topic is deleted at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from tubewatch.changes.logic import VideoState
from tubewatch.changes.state import RESTORE_READER, KafkaChangelogStore
from tubewatch.kafka import (
    TopicSpec,
    delete_topics,
    ensure_topics,
    make_consumer,
    make_producer,
)

PARTITIONS = 6


def write_changelog(bootstrap: str, topic: str, n: int, videos: int) -> None:
    producer = make_producer(bootstrap, **{"linger.ms": 50, "batch.size": 1_000_000})
    for i in range(n):
        video = i % videos
        value = VideoState(1000 + i // videos, 40, 100_000 + i, i).to_bytes()
        while True:
            try:
                producer.produce(topic, value, f"v{video:010d}".encode(), video % PARTITIONS)
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(120):
        raise RuntimeError("changelog records not delivered")


def bare_read(bootstrap: str, topic: str) -> int:
    """Read every partition from 0 to its end like the restore does; returns records read."""
    reader = make_consumer(
        bootstrap,
        f"bench-restore-{uuid.uuid4().hex[:8]}",
        **RESTORE_READER,
    )
    reader.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    pending, seen = set(range(PARTITIONS)), 0
    try:
        while pending:
            for record in reader.consume(num_messages=5000, timeout=1.0):
                error = record.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise KafkaException(error)
                    pending.discard(record.partition())
                    continue
                record.key(), record.value()
                seen += 1
    finally:
        reader.close()
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--n", type=int, default=1_000_000, help="changelog records")
    parser.add_argument("--videos", type=int, default=100_000, help="distinct videos")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    args = parser.parse_args()

    tag = uuid.uuid4().hex[:10]
    source, topic = f"bench-restore-input-{tag}", f"bench-restore-state-{tag}"
    ensure_topics(args.bootstrap, [TopicSpec(source, 3600_000)], partitions=PARTITIONS)
    store = KafkaChangelogStore(args.bootstrap, source, topic)  # creates the changelog topic
    print(f"writing {args.n} changelog records over {args.videos} videos ...", flush=True)
    write_changelog(args.bootstrap, topic, args.n, args.videos)

    rates: dict[str, list[float]] = {"bare": [], "restore": []}
    records = args.n  # what the topic holds; the bare reads say (compaction may trim it)
    try:
        for round_ in range(args.rounds):
            for name in ("bare", "restore") if round_ % 2 == 0 else ("restore", "bare"):
                started = time.perf_counter()
                if name == "bare":
                    records = bare_read(args.bootstrap, topic)
                else:
                    states = store.load(range(PARTITIONS))
                    if sum(map(len, states.values())) != args.videos:
                        raise RuntimeError("the restore lost videos")
                rates[name].append(records / (time.perf_counter() - started))
                print(f"round {round_ + 1} {name:>7}: {rates[name][-1]:10,.0f} records/s")
    finally:
        delete_topics(args.bootstrap, [source, topic])

    for name, values in rates.items():
        print(f"median {name:>7}: {statistics.median(values):10,.0f} records/s")
    paired = [r / b for r, b in zip(rates["restore"], rates["bare"], strict=True)]
    print(f"median of per-round ratios restore / bare: {statistics.median(paired):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
