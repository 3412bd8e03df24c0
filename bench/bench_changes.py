"""Change-engine throughput on a real broker against bare confluent-kafka loops, same run.

    python bench/bench_changes.py --bootstrap 127.0.0.1:19092 [--n 200000] [--videos 10000]

Writes N snapshots over K videos (a poll round touches every video; about half of the videos
move each round) into a fresh topic, then consumes that same topic with:

1. ``bare-eos``: a bare consume -> produce -> commit loop with the engine's guarantees: one
   Kafka transaction per batch (produce every input record, send_offsets, commit);
2. ``bare-alo``: the same loop at-least-once (produce, flush, synchronous commit);
3. ``bare-eos-json``: loop 1 plus ``json.loads`` of every value, for reference;
4. ``engine``: `ChangeEngine` (parse, state, changes, changelog, transaction per batch).

All four consume in batches of ``--batch`` (``consume(num_messages=...)``) from their own
consumer group. Each is timed from the end of its first batch to its last record (so group
joins are left out), and reported in snapshots/s with the ratio engine / bare loop.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaError, Producer
from tubewatch.changes.engine import ChangeEngine

from tubewatch.bus import KafkaBus
from tubewatch.kafka import TopicSpec, ensure_topics, flush_or_raise, make_producer


def make_snapshots(bootstrap: str, topic: str, n: int, videos: int) -> None:
    producer = make_producer(bootstrap, **{"linger.ms": 50, "batch.size": 1_000_000})
    for i in range(n):
        round_, v = divmod(i, videos)
        video_id = f"v{v:010d}"
        moving = v % 2 == 0
        value = {
            "video_id": video_id,
            "title": f"Video number {v}",
            "channel_title": "Bench channel",
            "thumbnail": f"https://i.ytimg.com/vi/{video_id}/hqdefault.jpg",
            "likes": 1000 + (round_ if moving else 0),
            "comments": 40,
            "views": 100_000 + (10 * round_ if moving else 0),
            "favorites": 0,
            "polled_at": f"2026-11-28T{12 + round_ // 60:02d}:{round_ % 60:02d}:00Z",
        }
        while True:
            try:
                producer.produce(topic, key=video_id.encode(), value=json.dumps(value).encode())
                break
            except BufferError:
                producer.poll(0.1)
    flush_or_raise(producer, 120)


def consumer_for(bootstrap: str, topic: str) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "partition.assignment.strategy": "cooperative-sticky",
        }
    )
    consumer.subscribe([topic])
    return consumer


def bare_loop(
    bootstrap: str, source: str, sink: str, n: int, batch: int, eos: bool, parse: bool = False
) -> float:
    """Consume ``n`` records and produce each to ``sink``; returns records/s after batch 1.

    ``parse``: also ``json.loads`` each value (the least any engine pays to read a count).
    """
    config = {"linger.ms": 20, "batch.size": 1_000_000}
    if eos:
        config["transactional.id"] = f"bench-{uuid.uuid4()}"
    producer: Producer = make_producer(bootstrap, **config)
    if eos:
        producer.init_transactions(30)
    consumer = consumer_for(bootstrap, source)
    seen, t0, counted_from = 0, None, 0
    try:
        while seen < n:
            records = consumer.consume(num_messages=batch, timeout=1.0)
            if not records:
                continue
            if eos:
                producer.begin_transaction()
            for record in records:
                if record.error():
                    if record.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise RuntimeError(record.error())
                if parse:
                    json.loads(record.value())
                while True:
                    try:
                        producer.produce(sink, key=record.key(), value=record.value())
                        break
                    except BufferError:
                        producer.poll(0.05)
                seen += 1
            if eos:
                positions = [
                    tp for tp in consumer.position(consumer.assignment()) if tp.offset >= 0
                ]
                producer.send_offsets_to_transaction(
                    positions, consumer.consumer_group_metadata(), 30
                )
                producer.commit_transaction(30)
            else:
                flush_or_raise(producer)
                consumer.commit(asynchronous=False)
            if t0 is None:
                t0, counted_from = time.perf_counter(), seen
        return (seen - counted_from) / (time.perf_counter() - t0)
    finally:
        consumer.close()


def engine_loop(bootstrap: str, source: str, sink: str, n: int, batch: int) -> tuple[float, int]:
    engine = ChangeEngine(
        KafkaBus(bootstrap),
        group_id=f"bench-{uuid.uuid4()}",
        input_topic=source,
        output_topic=sink,
        state_topic=f"bench-state-{uuid.uuid4().hex[:10]}",
        dlq_topic=f"bench-dlq-{uuid.uuid4().hex[:10]}",
        batch_size=batch,
    )
    t0, counted_from = None, 0
    try:
        while engine.snapshots_seen < n:
            if engine.step() and t0 is None:
                t0, counted_from = time.perf_counter(), engine.snapshots_seen
        rate = (engine.snapshots_seen - counted_from) / (time.perf_counter() - t0)
        return rate, engine.changes_emitted
    finally:
        engine.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--n", type=int, default=200_000, help="snapshots")
    parser.add_argument("--videos", type=int, default=10_000, help="distinct videos")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--batch", type=int, default=2000, help="records per consume()")
    args = parser.parse_args()

    tag = uuid.uuid4().hex[:10]
    source = f"bench-snapshots-{tag}"
    names = ("bare-eos", "bare-alo", "bare-eos-json", "engine")
    sinks = {name: f"bench-{name}-{tag}" for name in names}
    specs = [TopicSpec(name, 3600_000) for name in (source, *sinks.values())]
    ensure_topics(args.bootstrap, specs, partitions=args.partitions)
    print(f"writing {args.n} snapshots over {args.videos} videos to {source} ...", flush=True)
    make_snapshots(args.bootstrap, source, args.n, args.videos)

    eos = bare_loop(args.bootstrap, source, sinks["bare-eos"], args.n, args.batch, eos=True)
    alo = bare_loop(args.bootstrap, source, sinks["bare-alo"], args.n, args.batch, eos=False)
    eos_json = bare_loop(
        args.bootstrap, source, sinks["bare-eos-json"], args.n, args.batch, eos=True, parse=True
    )
    rate, changes = engine_loop(args.bootstrap, source, sinks["engine"], args.n, args.batch)

    print(f"load average (1, 5, 15 min): {os.getloadavg()}  cpus: {os.cpu_count()}")
    print(f"bare consume+produce, transactional : {eos:10,.0f} snapshots/s")
    print(f"bare consume+produce, at-least-once : {alo:10,.0f} snapshots/s")
    print(f"bare transactional + json.loads     : {eos_json:10,.0f} snapshots/s")
    print(f"change engine (exactly-once)        : {rate:10,.0f} snapshots/s  ({changes} changes)")
    print(f"ratio engine / bare transactional   : {rate / eos:.2f}")
    print(f"ratio engine / bare at-least-once   : {rate / alo:.2f}")
    print(f"ratio engine / bare + json.loads    : {rate / eos_json:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
