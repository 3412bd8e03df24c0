"""Change-engine throughput on a real broker against a bare confluent-kafka loop, same run.

    python bench/bench_changes.py --bootstrap 127.0.0.1:19092 [--n 1000000] [--videos 100000]
                                  [--batch 5000] [--rounds 5] [--warmup 1] [--json-reference]

Writes N snapshots over K videos (a poll round touches every video; about half of the videos
move each round) into a fresh topic once, then runs ``--rounds`` rounds; each round consumes
that same topic with a fresh consumer group into fresh output topics, once with each of:

- ``bare``: the bare consume-and-produce loop, the least any exactly-once consume-transform-
  produce service does: ``consume(num_messages=batch)``, begin a transaction, produce every
  record's key and value unchanged to the output topic, ``send_offsets_to_transaction``,
  commit. Same consumer and producer settings as the engine (`make_consumer` +
  `CONSUMER_TUNING`, `make_producer` + `PRODUCER_TUNING`), same batch size, one transaction
  per batch like the engine. It reads nothing inside the values and keeps no state.
- ``engine``: `ChangeEngine.step()` (parse and validate, state, changes, changelog, one
  transaction per batch) until it has read N snapshots.
- ``bare+json`` (``--json-reference`` only): ``bare`` plus ``json.loads`` of every value, to
  show what merely reading the values costs in CPython.

``--warmup`` rounds (default 1) run first and are not counted: a freshly started broker's JVM
is still compiling its transaction paths, and the first runs of an invocation were up to 2.5x
slower than the last. The order alternates between rounds (bare first, then engine first,
...) so drift in the shared machine's load hits both alike. Each run is timed from the end
of its first batch to its last record (group joins and state restore are left out). Each
run's output topics are deleted after it, and the input topic at the end, so the broker does
not accumulate partitions and compacted changelogs from run to run.

Reported: every run, the load average before and after, and three ratios of engine to bare:

- the **median of the per-round ratios** (each round's engine run divided by the same
  round's bare run, run back to back): the headline figure. Pairing cancels the drift of a
  shared machine's load between rounds; the median drops the round a neighbour disturbed.
- the ratio of the medians;
- the ratio of the best runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid

from confluent_kafka import KafkaError, Producer

from tubewatch.bus import KafkaBus
from tubewatch.changes.engine import (
    BATCH_SIZE,
    CONSUMER_TUNING,
    PRODUCER_TUNING,
    ChangeEngine,
)
from tubewatch.kafka import (
    TopicSpec,
    delete_topics,
    ensure_topics,
    flush_or_raise,
    make_consumer,
    make_producer,
)


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


def bare_loop(bootstrap: str, source: str, sink: str, n: int, batch: int, parse: bool) -> float:
    """Consume ``n`` records, produce each to ``sink`` in one transaction per batch with the
    consumed offsets; returns records/s after the first batch.

    ``parse``: also ``json.loads`` each value (the least any engine pays to read a count).
    """
    producer: Producer = make_producer(
        bootstrap, **PRODUCER_TUNING, **{"transactional.id": f"bench-{uuid.uuid4()}"}
    )
    producer.init_transactions(30)
    consumer = make_consumer(bootstrap, f"bench-{uuid.uuid4()}", **CONSUMER_TUNING)
    consumer.subscribe([source])
    seen, t0, counted_from = 0, None, 0
    try:
        while seen < n:
            records = consumer.consume(num_messages=batch, timeout=0.5)
            if not records:
                continue
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
            positions = [tp for tp in consumer.position(consumer.assignment()) if tp.offset >= 0]
            producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
            if t0 is None:
                t0, counted_from = time.perf_counter(), seen
        return (seen - counted_from) / (time.perf_counter() - t0)
    finally:
        consumer.close()
        flush_or_raise(producer)


def engine_loop(bootstrap: str, source: str, sink: str, state: str, n: int, batch: int) -> float:
    """Run `ChangeEngine.step()` until it has read ``n`` snapshots; snapshots/s after batch 1.

    ``state``: its changelog topic (a fresh one, created by the engine); dead letters go to
    ``<state>-dlq`` (none are expected).
    """
    engine = ChangeEngine(
        KafkaBus(bootstrap),
        group_id=f"bench-{uuid.uuid4().hex[:10]}",
        input_topic=source,
        output_topic=sink,
        state_topic=state,
        dlq_topic=f"{state}-dlq",
        batch_size=batch,
    )
    t0, counted_from = None, 0
    try:
        while engine.snapshots_seen < n:
            if engine.step() and t0 is None:
                t0, counted_from = time.perf_counter(), engine.snapshots_seen
        return (engine.snapshots_seen - counted_from) / (time.perf_counter() - t0)
    finally:
        engine.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    # The defaults measure sustained throughput on a realistic poll: 1M snapshots run ~5 s
    # each, well past what the consumer prefetches while the first batch is processed, and
    # 100k videos put every snapshot of a batch on a distinct video, as a real poll does
    # (with 10k, a batch holds each video about three times and the changelog coalesces).
    parser.add_argument("--n", type=int, default=1_000_000, help="snapshots")
    parser.add_argument("--videos", type=int, default=100_000, help="distinct videos")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--batch", type=int, default=BATCH_SIZE, help="records per consume() (engine default)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--json-reference", action="store_true", help="also run bare+json")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted rounds first")
    args = parser.parse_args()

    tag = uuid.uuid4().hex[:10]
    source = f"bench-snapshots-{tag}"
    ensure_topics(args.bootstrap, [TopicSpec(source, 3600_000)], partitions=args.partitions)
    print(f"writing {args.n} snapshots over {args.videos} videos to {source} ...", flush=True)
    make_snapshots(args.bootstrap, source, args.n, args.videos)

    def run(name: str, round_: int) -> float:
        sink = f"bench-{name.replace('+', '-')}-{tag}-{round_}"
        state = f"bench-state-{tag}-{round_}"
        ensure_topics(args.bootstrap, [TopicSpec(sink, 3600_000)], partitions=args.partitions)
        try:
            if name == "engine":
                return engine_loop(args.bootstrap, source, sink, state, args.n, args.batch)
            return bare_loop(args.bootstrap, source, sink, args.n, args.batch, name == "bare+json")
        finally:
            delete_topics(args.bootstrap, [sink, state, f"{state}-dlq"])

    names = ["bare", "engine"] + (["bare+json"] if args.json_reference else [])
    rates: dict[str, list[float]] = {name: [] for name in names}
    try:
        for round_ in range(-args.warmup, args.rounds):
            order = names if round_ % 2 == 0 else names[::-1]
            if round_ == 0:
                load_before = os.getloadavg()
            for name in order:
                rate = run(name, round_)
                label = "warm-up" if round_ < 0 else f"round {round_ + 1}"
                print(f"{label:>8} {name:>9}: {rate:10,.0f} snapshots/s", flush=True)
                if round_ >= 0:
                    rates[name].append(rate)
    finally:
        delete_topics(args.bootstrap, [source])

    print(f"load average (1, 5, 15 min) before: {load_before}  after: {os.getloadavg()}")
    print(f"cpus: {os.cpu_count()}  n={args.n} videos={args.videos} batch={args.batch}")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name in names:
        runs = ", ".join(f"{r:,.0f}" for r in rates[name])
        print(f"median {name:>9}: {medians[name]:10,.0f} snapshots/s   (runs: {runs})")
    paired = [engine / bare for engine, bare in zip(rates["engine"], rates["bare"], strict=True)]
    print(f"per-round ratios engine / bare      : {', '.join(f'{r:.2f}' for r in paired)}")
    print(f"median of per-round ratios          : {statistics.median(paired):.2f}")
    print(f"ratio of medians engine / bare      : {medians['engine'] / medians['bare']:.2f}")
    print(f"ratio of best runs engine / bare    : {max(rates['engine']) / max(rates['bare']):.2f}")
    if args.json_reference:
        print(f"ratio of medians bare+json / bare   : {medians['bare+json'] / medians['bare']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
