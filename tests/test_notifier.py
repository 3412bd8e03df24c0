"""The notifier end to end: real broker, real SQLite file, real apprise, real local receivers.

HTTP and SMTP receivers are the ones in `tests/receivers.py`; Slack and Telegram, which only
live on the internet, are checked by intercepting apprise's `requests` calls with `responses`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import responses
from sqlmodel import Session, select

sys.path.insert(0, str(Path(__file__).parent))
from receivers import HttpReceiver, SmtpReceiver  # noqa: E402

from tubewatch.bus import KafkaBus  # noqa: E402
from tubewatch.db import get_engine, init_db  # noqa: E402
from tubewatch.kafka import flush_or_raise, produce_message  # noqa: E402
from tubewatch.messages import VideoChange  # noqa: E402
from tubewatch.models import Delivery, Subscription, Watch, WatchVideo  # noqa: E402
from tubewatch.notifier.retry import RetryPolicy  # noqa: E402
from tubewatch.notifier.service import Notifier  # noqa: E402
from tubewatch.secrets import TargetCipher  # noqa: E402
from tubewatch.settings import Settings  # noqa: E402

SECRET = "test-secret-key-for-notifier"
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TG_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def vid(i: int) -> str:
    return f"video{i:06d}"


def change(video_id: str, likes=(3020, 3023), minute: int = 1, title: str = "Cats") -> VideoChange:
    return VideoChange(
        video_id=video_id,
        title=title,
        likes_previous=likes[0],
        likes_current=likes[1],
        comments_previous=41,
        comments_current=41,
        views_previous=100,
        views_current=100,
        polled_at=T0 + timedelta(minutes=minute),
    )


@pytest.fixture
def settings(database_url, kafka_bootstrap) -> Settings:
    return Settings(
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        secret_key=SECRET,
        allow_private_targets=True,
        digest_window_s=0,
    )


@pytest.fixture
def engine(settings):
    engine = get_engine(settings.database_url)
    init_db(engine)
    return engine


@pytest.fixture
def bus(kafka_bootstrap) -> KafkaBus:
    return KafkaBus(kafka_bootstrap)


@pytest.fixture
def topic(topic_factory) -> str:
    return topic_factory("notifier-changes", partitions=2)


def add_subscription(engine, targets, video_id=None, owner="alice", watch=None, **kw) -> int:
    """A subscription (on a new video watch unless ``watch`` is given); returns its id."""
    cipher = TargetCipher(SECRET)
    with Session(engine, expire_on_commit=False) as s:
        if watch is None:
            watch = Watch(owner=owner, kind="video", video_id=video_id)
            s.add(watch)
            s.flush()
        sub = Subscription(
            owner=owner, watch_id=watch.id, targets=[cipher.encrypt(t) for t in targets], **kw
        )
        s.add(sub)
        s.commit()
        return sub.id


def add_playlist_watch(engine, video_ids, owner="alice") -> Watch:
    with Session(engine, expire_on_commit=False) as s:
        watch = Watch(owner=owner, kind="playlist", playlist_id="PL" + uuid.uuid4().hex[:10])
        s.add(watch)
        s.flush()
        for video_id in video_ids:
            s.add(WatchVideo(watch_id=watch.id, video_id=video_id))
        s.commit()
        return watch


def produce(bus, topic, changes) -> None:
    producer = bus.producer()
    for c in changes:
        produce_message(producer, topic, c)
    flush_or_raise(producer)


def deliveries(engine) -> list[Delivery]:
    with Session(engine) as s:
        return list(s.exec(select(Delivery).order_by(Delivery.id)).all())


def make_notifier(settings, engine, bus, topic, **kw) -> Notifier:
    kw.setdefault("policy", RetryPolicy(base_s=0.05, max_attempts=4))
    kw.setdefault("lease_s", 5)
    kw.setdefault("workers", 4)
    return Notifier(settings, engine, bus, topic, f"notifier-test-{uuid.uuid4().hex[:8]}", **kw)


class Running:
    """A notifier running its real `run(stop)` loop in a thread."""

    def __init__(self, notifier: Notifier):
        self.notifier = notifier
        self.stop = threading.Event()
        self.thread = threading.Thread(target=notifier.run, args=(self.stop,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self.notifier

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive()


def wait_until(predicate, timeout_s=15.0, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def settled(engine, count):
    rows = deliveries(engine)
    return len(rows) >= count and all(r.status != "retrying" for r in rows)


# --- tests ---------------------------------------------------------------------------------
def test_a_change_reaches_two_subscribers_once_each(settings, engine, bus, topic):
    with HttpReceiver() as http:
        v = vid(1)
        a = add_subscription(engine, [http.url(path="/alice")], v, "alice")
        playlist = add_playlist_watch(engine, [v], owner="bob")
        b = add_subscription(engine, [http.url(path="/bob")], owner="bob", watch=playlist)
        add_subscription(engine, [http.url(path="/paused")], v, paused=True)
        add_subscription(engine, [http.url(path="/views")], v, metrics=["views"])
        add_subscription(engine, [http.url(path="/big")], v, min_delta={"likes": 100})
        # The same change twice (an at-least-once change engine) and another video's change.
        produce(bus, topic, [change(v), change(v), change(vid(2))])
        with Running(make_notifier(settings, engine, bus, topic)):
            http.wait_for(2)
            wait_until(lambda: settled(engine, 2), what="deliveries settled")
            time.sleep(0.5)  # room for a duplicate to show up
        assert [r.path for r in http.ok].count("/alice") == 1
        assert [r.path for r in http.ok].count("/bob") == 1
        assert len(http.requests) == 2
        alert = http.to("/alice")[0]
        assert alert.title == "Cats: likes +3"
        assert alert.message.splitlines() == [
            "likes: 3020 → 3023 (+3)",
            f"https://youtu.be/{v}",
        ]
    rows = deliveries(engine)
    assert {(r.subscription_id, r.status, r.attempts) for r in rows} == {
        (a, "delivered", 1),
        (b, "delivered", 1),
    }
    assert {r.event_id for r in rows} == {f"{v}@2026-11-28T12:01:00Z"}
    assert all(r.delivered_at is not None for r in rows)


def test_a_receiver_failing_three_times_then_succeeding_gets_one_alert(
    settings, engine, bus, topic
):
    with HttpReceiver() as http:
        http.fail_next(3, status=500)
        add_subscription(engine, [http.url()], vid(1))
        produce(bus, topic, [change(vid(1))])
        with Running(make_notifier(settings, engine, bus, topic)):
            http.wait_for(1)
            wait_until(lambda: settled(engine, 1))
            time.sleep(0.3)
        assert len(http.ok) == 1
        assert [r.status for r in http.requests] == [500, 500, 500, 200]
    [row] = deliveries(engine)
    assert (row.status, row.attempts) == ("delivered", 4)


def test_retry_after_is_honoured(settings, engine, bus, topic):
    with HttpReceiver() as http:
        http.fail_next(1, status=429, retry_after="1")
        add_subscription(engine, [http.url()], vid(1))
        produce(bus, topic, [change(vid(1))])
        with Running(make_notifier(settings, engine, bus, topic)):
            http.wait_for(1)
        refused, accepted = http.requests
        assert refused.status == 429
        # The backoff base is 0.05 s: only Retry-After explains a wait of a second.
        assert accepted.at - refused.at >= 0.95


def test_a_dead_target_does_not_stop_the_other_one(settings, engine, bus, topic, caplog):
    caplog.set_level(logging.DEBUG)
    with HttpReceiver() as http:
        http.fail_always(status=500, path="/hook-s3cretpath")
        bad = f"json://user:s3cretpass@127.0.0.1:{http.port}/hook-s3cretpath"
        add_subscription(engine, [bad, http.url(path="/good")], vid(1))
        produce(bus, topic, [change(vid(1))])
        with Running(make_notifier(settings, engine, bus, topic)):
            http.wait_for(1, path="/good")
            wait_until(lambda: settled(engine, 1), what="dead")
        assert len(http.to("/good")) == 1  # never re-sent while the other one was retried
        assert len([r for r in http.requests if r.path == "/hook-s3cretpath"]) == 4
    [row] = deliveries(engine)
    assert (row.status, row.attempts) == ("dead", 4)
    assert "json://127.0.0.1/…" in row.error and "500" in row.error
    assert "s3cret" not in row.error and "s3cret" not in json.dumps(row.payload)
    # apprise's and urllib3's own debug lines are silenced by `tubewatch notifier`.
    ours = [r for r in caplog.records if not r.name.startswith(("apprise", "urllib3"))]
    assert any(r.name.startswith("tubewatch") for r in ours)
    assert all("s3cret" not in r.getMessage() for r in ours)


def test_private_targets_are_refused_unless_allowed(settings, engine, bus, topic):
    closed = settings.model_copy(update={"allow_private_targets": False})
    with HttpReceiver() as http:
        add_subscription(engine, [http.url()], vid(1))
        produce(bus, topic, [change(vid(1))])
        with Running(make_notifier(closed, engine, bus, topic)):
            wait_until(lambda: settled(engine, 1))
        assert http.requests == []
    [row] = deliveries(engine)
    assert row.status == "failed" and "private or loopback" in row.error
    assert row.attempts == 1  # not retried: it can never work


def test_form_ntfy_and_mail_each_get_their_format(settings, engine, bus, topic):
    with HttpReceiver() as http, SmtpReceiver() as smtp:
        targets = [http.url("form", "/form"), http.url("ntfy", "/topic"), smtp.url()]
        add_subscription(engine, targets, vid(1))
        produce(bus, topic, [change(vid(1))])
        with Running(make_notifier(settings, engine, bus, topic)):
            http.wait_for(2)
            [mail] = smtp.wait_for(1)
        form = http.to("/form")[0]
        assert form.form["title"] == "Cats: likes +3"
        assert "likes: 3020 → 3023 (+3)" in form.form["message"]
        ntfy = http.to("/")[0]  # ntfy posts JSON to the server root, topic inside
        assert ntfy.json["topic"] == "topic" and "**" not in ntfy.message
        assert "likes: 3020 → 3023 (+3)" in ntfy.message
        assert mail.subject == "Cats: likes +3"
        assert "<strong>likes</strong>: 3020 → 3023 (+3)" in mail.body("html")
        assert f"https://youtu.be/{vid(1)}" in mail.body("plain")


def test_many_videos_of_one_watch_make_one_digest_per_window(settings, engine, bus, topic):
    videos = [vid(i) for i in range(6)]
    with HttpReceiver() as http:
        playlist = add_playlist_watch(engine, videos)
        add_subscription(engine, [http.url()], watch=playlist)
        notifier = make_notifier(settings, engine, bus, topic, digest_window_s=1.0)
        notifier.handle([change(v, minute=1) for v in videos[:5]])
        notifier.sender.send_due()
        [first] = http.wait_for(1)
        assert first.title == "5 videos changed"
        assert all(f"https://youtu.be/{v}" in first.message for v in videos[:5])
        # Within the window: held back, then sent together.
        notifier.handle([change(videos[5], minute=2), change(videos[0], minute=2)])
        assert notifier.sender.send_due() == 0
        wait_until(lambda: notifier.sender.send_due() > 0, timeout_s=3)
        second = http.wait_for(2)[1]
        assert second.at - first.at >= 0.9
        assert second.title == "2 videos changed"
        assert len(http.requests) == 2
    assert [r.status for r in deliveries(engine)] == ["delivered"] * 7


def test_a_redelivered_message_never_sends_twice(settings, engine, bus, topic):
    """A crash after recording but before committing offsets: the batch comes again."""
    with HttpReceiver() as http:
        add_subscription(engine, [http.url()], vid(1))
        produce(bus, topic, [change(vid(1))])
        first = make_notifier(settings, engine, bus, topic)
        batch = []
        wait_until(lambda: batch.extend(first.consumer.poll_batch(10, 0.5)) or batch)
        assert first.handle([r.value for r in batch]) == 1
        first.close_consumer()  # "crash": offsets never committed
        second = make_notifier(settings, engine, bus, topic)
        second.group_id = first.group_id
        wait_until(lambda: second.process_batch() > 0, what="redelivery")
        assert deliveries(engine)[0].status == "retrying"
        second.sender.send_due()
        second.sender.send_due()
        second.close_consumer()
        assert len(http.wait_for(1)) == 1
    assert len(deliveries(engine)) == 1


@responses.activate
def test_slack_and_telegram_payloads(settings, engine):
    tg = responses.post(f"https://api.telegram.org/bot{TG_TOKEN}/sendMessage", json={"ok": True})
    slack = responses.post(
        "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
        body="ok",
    )
    videos = [vid(i) for i in range(300)]
    playlist = add_playlist_watch(engine, videos)
    add_subscription(
        engine,
        [
            f"tgram://{TG_TOKEN}/12345",
            "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general",
        ],
        watch=playlist,
    )
    notifier = Notifier(settings, engine, KafkaBus("unused:1"), digest_window_s=0)
    # Titles are user content: Markdown characters in them must stay literal text.
    titles = [f"*NEW* video_{i} with a long and descriptive title" for i in range(300)]
    notifier.handle([change(v, title=t) for v, t in zip(videos, titles, strict=True)])
    notifier.sender.send_due()
    assert tg.call_count == 1 and slack.call_count == 1
    sent = json.loads(tg.calls[0].request.body)
    assert str(sent["chat_id"]) == "12345" and sent["parse_mode"].lower().startswith("markdown")
    text = sent["text"]
    assert len(text) <= 4096  # Telegram's limit: the digest was cut, not rejected
    assert text.startswith("*300 videos changed*")
    assert "*\\*NEW\\* video\\_0 with a long and descriptive title*" in text
    assert "*likes*: 3020 → 3023 (+3)" in text
    shown = text.count("https://youtu.be/")
    assert 10 < shown < 300 and f"… and {300 - shown} more" in text
    attachment = json.loads(slack.calls[0].request.body)["attachments"][0]
    assert attachment["title"] == "300 videos changed"
    assert "*likes*: 3020 → 3023 (+3)" in attachment["text"]
    shown = attachment["text"].count("https://youtu.be/")
    assert len(attachment["text"]) <= 35000 and shown > 200  # Slack allows far more
    assert shown == 300 or f"… and {300 - shown} more" in attachment["text"]
    assert all(r.status == "delivered" for r in deliveries(engine))


def test_killed_mid_batch_and_restarted_loses_nothing(settings, engine, bus, topic, tmp_path):
    """SIGKILL while alerts are going out; a restart finishes the job.

    Exactly-once is guaranteed for everything but the sends in flight at the kill (sent, not
    yet recorded): those may arrive twice, so duplicates are bounded by the worker count.
    """
    n = 120
    with HttpReceiver() as http:
        http.delay_s = 0.01  # a receiver with some latency, so the kill lands mid-batch
        videos = [vid(i) for i in range(n)]
        for i, v in enumerate(videos):
            add_subscription(engine, [http.url(path=f"/s{i}")], v)
        produce(bus, topic, [change(v) for v in videos])
        env = {
            **os.environ,
            "TUBEWATCH_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "TUBEWATCH_DATABASE_URL": settings.database_url,
            "TUBEWATCH_SECRET_KEY": SECRET,
            "TUBEWATCH_ALLOW_PRIVATE_TARGETS": "true",
            "TUBEWATCH_DIGEST_WINDOW_S": "0",
            "TUBEWATCH_NOTIFIER_TOPIC": topic,
            "TUBEWATCH_NOTIFIER_GROUP": f"notifier-kill-{uuid.uuid4().hex[:8]}",
            "TUBEWATCH_NOTIFIER_WORKERS": "2",
            "TUBEWATCH_NOTIFIER_LEASE_S": "1",
            "TUBEWATCH_DATA_DIR": str(tmp_path),
        }
        command = [sys.executable, "-m", "tubewatch.cli", "notifier"]
        log_path = tmp_path / "notifier.log"
        with log_path.open("wb") as log:
            first = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                http.wait_for(n // 3, timeout_s=60)
            finally:
                first.send_signal(signal.SIGKILL)
                first.wait(10)
            before_kill = http.ok
            at_kill = len(before_kill)
            assert at_kill < n, "the kill came too late to test anything"
            second = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                http.wait_for(n, timeout_s=60)
                wait_until(lambda: settled(engine, n), timeout_s=30)
                time.sleep(1.5)  # longer than the lease: a stray re-send would show up
            finally:
                second.send_signal(signal.SIGTERM)
                assert second.wait(20) == 0
        counts = Counter(r.path for r in http.ok)
    assert set(counts) == {f"/s{i}" for i in range(n)}, "an alert was lost"
    duplicates = {path for path, c in counts.items() if c > 1}
    print(f"killed after {at_kill} of {n} alerts; {len(duplicates)} duplicates")
    # Only sends in flight at the kill (received, outcome not yet written) may come twice:
    # at most one per worker, among the last alerts the receiver accepted before the kill.
    assert all(counts[p] == 2 for p in duplicates)
    assert duplicates <= {r.path for r in before_kill[-2:]}, "a settled alert was re-sent"
    rows = deliveries(engine)
    assert len(rows) == n and all(r.status == "delivered" for r in rows)
    assert "127.0.0.1:" not in log_path.read_text()  # no target URL in the process log


def test_runs_on_the_embedded_bus_and_counts_in_prometheus(settings, engine):
    """`tubewatch run` without a broker: the same notifier over the database-backed bus."""
    from prometheus_client import REGISTRY

    from tubewatch.embedded_bus import EmbeddedBus

    def sample(name):
        return REGISTRY.get_sample_value(name) or 0.0

    sent, latency = (
        sample("tubewatch_notifier_sent_total"),
        sample("tubewatch_notifier_latency_seconds_count"),
    )
    bus = EmbeddedBus(engine, db_poll_interval_s=0.05)
    bus.ensure_topics()
    with HttpReceiver() as http:
        add_subscription(engine, [http.url()], vid(1))
        producer = bus.producer()
        produce_message(producer, "video_changes", change(vid(1)))
        producer.flush(5)
        with Running(Notifier(settings, engine, bus, digest_window_s=0)):
            http.wait_for(1)
            wait_until(lambda: settled(engine, 1))
        assert len(http.ok) == 1
    assert sample("tubewatch_notifier_sent_total") == sent + 1
    assert sample("tubewatch_notifier_latency_seconds_count") == latency + 1


def test_a_slow_target_never_gets_an_alert_twice_while_others_queue(settings, engine, bus, topic):
    """Sends slower than half the lease, one worker: no row is claimed (and sent) a second
    time while an earlier claim of it is still queued or on its way."""
    with HttpReceiver() as http:
        http.delay_s = 0.4  # every send takes longer than half the lease
        videos = [vid(i) for i in range(6)]
        for i, v in enumerate(videos):
            add_subscription(engine, [http.url(path=f"/slow{i}")], v)
        produce(bus, topic, [change(v) for v in videos])
        notifier = make_notifier(
            settings, engine, bus, topic, workers=1, lease_s=0.7, digest_window_s=0
        )
        with Running(notifier):
            http.wait_for(6, timeout_s=30)
            wait_until(lambda: settled(engine, 6), timeout_s=30, what="deliveries settled")
            time.sleep(1.0)  # past a lease: a stray second send would show up
    counts = Counter(r.path for r in http.ok)
    assert counts == {f"/slow{i}": 1 for i in range(6)}


def test_the_notifier_takes_its_knobs_from_the_settings(settings, engine, bus, monkeypatch):
    monkeypatch.setenv("TUBEWATCH_NOTIFIER_WORKERS", "3")
    monkeypatch.setenv("TUBEWATCH_NOTIFIER_LEASE_S", "12.5")
    monkeypatch.setenv("TUBEWATCH_NOTIFIER_RETRY_BASE_S", "0.5")
    monkeypatch.setenv("TUBEWATCH_NOTIFIER_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("TUBEWATCH_NOTIFIER_TOPIC", "my_changes")
    monkeypatch.setenv("TUBEWATCH_NOTIFIER_GROUP", "my-notifier")
    from_env = Settings(database_url=settings.database_url, secret_key=SECRET, kafka_bootstrap=None)
    notifier = Notifier(from_env, engine, bus)
    assert (notifier.topic, notifier.group_id) == ("my_changes", "my-notifier")
    sender = notifier.sender
    assert (sender.workers, sender.lease_s) == (3, 12.5)
    assert (sender.policy.base_s, sender.policy.max_attempts) == (0.5, 4)
    # Arguments still win over the settings (tests and benchmarks pass them).
    assert Notifier(from_env, engine, bus, workers=2).sender.workers == 2
