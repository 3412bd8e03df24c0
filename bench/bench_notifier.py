"""Notifier throughput and latency against a bare HTTP loop, in the same run.

    python bench/bench_notifier.py --bootstrap 127.0.0.1:19092 [--subs 1000] [--alerts 1000]
        [--workers 8] [--rate 200] [--seconds 10]

Setup: a fresh SQLite file, ``--subs`` video watches each with one subscription whose target
is ``json://127.0.0.1:<port>/s<i>`` on a local receiver (`tests/receivers.HttpReceiver`),
digest window 0 (every change its own alert).

1. bare: the same alert bodies POSTed with ``requests.post`` (the client apprise uses, one
   connection per call as apprise does) from ``--workers`` threads: the ceiling.
2. burst: ``--alerts`` changes produced at once; alerts/s from the first produce to the last
   alert received, through the whole notifier (Kafka consume, match, record, claim, apprise
   send, outcome written). Ratio = notifier / bare.
3. paced: changes produced at ``--rate`` per second for ``--seconds``; p50/p99 latency from a
   change produced to its alert received.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from sqlmodel import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from receivers import HttpReceiver  # noqa: E402

from tubewatch.bus import KafkaBus  # noqa: E402
from tubewatch.db import get_engine, init_db  # noqa: E402
from tubewatch.kafka import TopicSpec, ensure_topics, flush_or_raise, produce_message  # noqa: E402
from tubewatch.messages import VideoChange  # noqa: E402
from tubewatch.models import Subscription, Watch  # noqa: E402
from tubewatch.notifier.service import Notifier  # noqa: E402
from tubewatch.secrets import TargetCipher  # noqa: E402
from tubewatch.settings import Settings  # noqa: E402

SECRET = "bench-secret"
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def vid(i: int) -> str:
    return f"bench{i:06d}"


def change(sub: int, seq: int) -> VideoChange:
    """The ``seq``-th change, for subscription ``sub``'s video; its title names the event."""
    return VideoChange(
        video_id=vid(sub),
        title=f"ev{seq}",
        likes_previous=seq,
        likes_current=seq + 1,
        comments_previous=1,
        comments_current=1,
        views_previous=1,
        views_current=1,
        polled_at=T0 + timedelta(seconds=seq),
    )


def setup(database_url: str, receiver: HttpReceiver, subs: int):
    engine = get_engine(database_url)
    init_db(engine)
    cipher = TargetCipher(SECRET)
    with Session(engine) as s:
        for i in range(subs):
            watch = Watch(owner="bench", kind="video", video_id=vid(i))
            s.add(watch)
            s.flush()
            target = cipher.encrypt(receiver.url(path=f"/s{i}"))
            s.add(Subscription(owner="bench", watch_id=watch.id, targets=[target]))
        s.commit()
    return engine


def bare(receiver: HttpReceiver, n: int, subs: int, workers: int) -> float:
    """alerts/s of a bare loop posting the same JSON bodies apprise's json:// posts."""

    def post(seq: int) -> None:
        body = {
            "version": "1.0",
            "title": f"ev{seq}: likes +1",
            "message": f"likes: {seq} → {seq + 1} (+1)\nhttps://youtu.be/{vid(seq % subs)}",
            "type": "info",
        }
        response = requests.post(
            f"http://127.0.0.1:{receiver.port}/bare{seq % subs}",
            data=json.dumps(body),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        response.raise_for_status()

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(post, range(n)))
    return n / (time.perf_counter() - started)


def arrivals(receiver: HttpReceiver) -> dict[int, float]:
    """Event number -> arrival time, for the notifier's alerts (title ``ev<seq>: ...``).

    A digest (title ``N videos changed``) names each event on a line of its own.
    """
    out = {}
    for r in receiver.ok:
        if not r.path.startswith("/s"):
            continue
        title = r.json["title"]
        if title.endswith("videos changed"):
            names = [line for line in r.json["message"].splitlines() if line.startswith("ev")]
        else:
            names = [title.split(":", 1)[0]]
        for name in names:
            out[int(name[2:])] = r.at
    return out


def run_notifier(args, receiver, engine, settings, topic, schedule) -> dict[int, float]:
    """Runs a notifier while ``schedule`` produces; returns event -> produce time."""
    bus = KafkaBus(args.bootstrap)
    notifier = Notifier(
        settings,
        engine,
        bus,
        topic,
        f"bench-notifier-{uuid.uuid4().hex[:8]}",
        workers=args.workers,
        digest_window_s=0,
    )
    stop = threading.Event()
    thread = threading.Thread(target=notifier.run, args=(stop,), daemon=True)
    thread.start()
    try:
        time.sleep(3)  # group join and partition assignment, outside the measurement
        produced = schedule(bus.producer())
        deadline = time.time() + 120
        while len(arrivals(receiver).keys() & produced.keys()) < len(produced):
            if time.time() > deadline:
                raise TimeoutError("alerts missing")
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(30)
    return produced


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--subs", type=int, default=1000)
    parser.add_argument(
        "--alerts", type=int, default=1000, help="burst size; at most --subs (one per subscription)"
    )
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, HttpReceiver() as receiver:
        database_url = f"sqlite:///{tmp}/bench.db"
        settings = Settings(
            database_url=database_url,
            kafka_bootstrap=args.bootstrap,
            secret_key=SECRET,
            allow_private_targets=True,
            digest_window_s=0,
            data_dir=Path(tmp),
        )
        engine = setup(database_url, receiver, args.subs)

        args.alerts = min(args.alerts, args.subs)  # one change per subscription: no digests
        bare_rate = bare(receiver, args.alerts, args.subs, args.workers)
        print(f"bare requests.post x{args.workers} threads: {bare_rate:,.0f} alerts/s")

        def burst(producer):
            produced = {}
            for seq in range(args.alerts):
                produced[seq] = time.time()
                produce_message(producer, topic, change(seq % args.subs, seq))
            flush_or_raise(producer)
            return produced

        topic = f"bench-changes-{uuid.uuid4().hex[:8]}"
        ensure_topics(args.bootstrap, [TopicSpec(topic, 3600_000)], partitions=6)
        produced = run_notifier(args, receiver, engine, settings, topic, burst)
        got = arrivals(receiver)
        elapsed = max(got[s] for s in produced) - min(produced.values())
        rate = len(produced) / elapsed
        posts = len([r for r in receiver.ok if r.path.startswith("/s")])
        print(
            f"notifier burst of {len(produced)} ({posts} HTTP posts): {rate:,.0f} alerts/s, "
            f"ratio {rate / bare_rate:.2f} of bare"
        )

        first = args.alerts
        total = int(args.rate * args.seconds)

        def paced(producer):
            produced = {}
            start = time.time()
            for k in range(total):
                wait = start + k / args.rate - time.time()
                if wait > 0:
                    time.sleep(wait)
                seq = first + k
                produced[seq] = time.time()
                produce_message(producer, topic2, change(seq % args.subs, seq))
                producer.poll(0)
            flush_or_raise(producer)
            return produced

        topic2 = f"bench-changes-{uuid.uuid4().hex[:8]}"
        ensure_topics(args.bootstrap, [TopicSpec(topic2, 3600_000)], partitions=6)
        produced = run_notifier(args, receiver, engine, settings, topic2, paced)
        got = arrivals(receiver)
        latencies = sorted(got[s] - t for s, t in produced.items())
        p50 = statistics.median(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(
            f"notifier paced at {args.rate:.0f}/s for {args.seconds:.0f}s ({total} alerts): "
            f"latency p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
            f"max {latencies[-1] * 1000:.0f} ms"
        )
        titles = Counter(r.json["title"] for r in receiver.ok if r.path.startswith("/s"))
        print(f"duplicates at the receiver: {sum(c - 1 for c in titles.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
