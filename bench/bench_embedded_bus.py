"""Embedded-bus throughput on a SQLite file (WAL) against bare SQLAlchemy, same run.

    python bench/bench_embedded_bus.py [--n 50000] [--batch 500]

1. ``bare-insert``: executemany of the same rows into a plain table, one transaction per
   batch (the floor for any log kept in this database);
2. ``bus-produce``: `EmbeddedProducer.produce` N snapshots, ``flush()`` every batch;
3. ``bare-select``: read the plain table back in batches by key range;
4. ``bus-consume``: `EmbeddedConsumer.poll_batch` + ``commit()`` per batch (parsing included);
5. ``engine``: the change engine on the bus (`DatabaseStateStore`, at-least-once), reading the
   same records: the ``tubewatch run`` default. Every record after a video's first is a change.

Prints records/s and the ratios bus / bare, engine / bus-consume.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Column, Integer, LargeBinary, MetaData, Table, insert, select

from tubewatch.changes.engine import ChangeEngine
from tubewatch.changes.state import DatabaseStateStore
from tubewatch.db import get_engine
from tubewatch.embedded_bus import EmbeddedBus
from tubewatch.messages import VideoSnapshot


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    n, batch = args.n, args.batch

    snapshots = [
        VideoSnapshot(
            video_id=f"vid{i % 5000:08d}",
            title=f"Video {i}",
            channel_title="chan",
            thumbnail="https://i.ytimg.com/x.jpg",
            likes=i,
            comments=i // 10,
            views=1000 + i,
            favorites=0,
            polled_at=datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
        )
        for i in range(n)
    ]
    pairs = [(s.key, s.to_bytes()) for s in snapshots]

    with tempfile.TemporaryDirectory() as tmp:
        engine = get_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        bare = Table(
            "bare_log",
            MetaData(),
            Column("id", Integer, primary_key=True),
            Column("key", LargeBinary),
            Column("value", LargeBinary),
        )
        bare.metadata.create_all(engine)

        started = time.perf_counter()
        for start in range(0, n, batch):
            rows = [{"key": k, "value": v} for k, v in pairs[start : start + batch]]
            with engine.begin() as conn:
                conn.execute(insert(bare), rows)
        bare_insert = n / (time.perf_counter() - started)

        bus = EmbeddedBus(engine)
        bus.ensure_topics()
        producer = bus.producer()
        started = time.perf_counter()
        for start in range(0, n, batch):
            for key, value in pairs[start : start + batch]:
                producer.produce("bench", key=key, value=value)
            assert producer.flush() == 0
        bus_produce = n / (time.perf_counter() - started)

        started = time.perf_counter()
        last, seen = 0, 0
        with engine.connect() as conn:
            while seen < n:
                rows = conn.execute(
                    select(bare).where(bare.c.id > last).order_by(bare.c.id).limit(batch)
                ).all()
                seen += len(rows)
                last = rows[-1].id
        bare_select = n / (time.perf_counter() - started)

        consumer = bus.consumer("bench", "bench", VideoSnapshot)
        started = time.perf_counter()
        seen = 0
        while seen < n:
            seen += len(consumer.poll_batch(batch, 1.0))
            consumer.commit()
        bus_consume = n / (time.perf_counter() - started)
        consumer.close()

        changes = ChangeEngine(
            bus,
            group_id="bench-changes",
            input_topic="bench",
            output_topic="bench-changes",
            state_store=DatabaseStateStore(engine),
            batch_size=batch,
        )
        started = time.perf_counter()
        while changes.snapshots_seen < n:
            changes.step()
        engine_rate = n / (time.perf_counter() - started)
        changes.close()

    print(f"n={n} batch={batch} (SQLite WAL file)")
    print(f"bare-insert  {bare_insert:>10,.0f}/s")
    print(f"bus-produce  {bus_produce:>10,.0f}/s   ratio {bus_produce / bare_insert:.2f}")
    print(f"bare-select  {bare_select:>10,.0f}/s")
    print(f"bus-consume  {bus_consume:>10,.0f}/s   ratio {bus_consume / bare_select:.2f}")
    print(
        f"engine       {engine_rate:>10,.0f}/s   ratio {engine_rate / bus_consume:.2f} (/ consume)"
    )


if __name__ == "__main__":
    main()
