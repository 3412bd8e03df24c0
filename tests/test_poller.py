"""The poller against the YouTube simulator over real HTTP, the real broker and SQLite."""

from __future__ import annotations

import logging
import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlmodel import select
from test_changes_helpers import read_all
from youtube_sim_fixtures import SimControl, sim_video, start_youtube_sim

from tubewatch import quota
from tubewatch.backoff import Backoff
from tubewatch.bus import KafkaBus
from tubewatch.db import get_engine, init_db, session_scope
from tubewatch.messages import VideoSnapshot
from tubewatch.models import QuotaDay, Video, Watch, WatchVideo
from tubewatch.poller.service import Poller
from tubewatch.settings import Settings

SECRET = "AIzaSyTEST-secret-key-do-not-log-0123456789"


def vids(n: int, prefix: str = "a") -> list[str]:
    """``n`` valid 11-character video ids."""
    return [f"{prefix}{i:010d}" for i in range(n)]


class FakeClock:
    """A settable clock for the poller (starts now, moves only when told)."""

    def __init__(self):
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Harness:
    """Simulator + database + broker topic + a poller factory for one test."""

    def __init__(self, sim: SimControl, database_url: str, bootstrap: str, topic: str):
        self.sim = sim
        self.bootstrap = bootstrap
        self.topic = topic
        self.engine = get_engine(database_url)
        init_db(self.engine)
        self.settings = Settings(
            database_url=database_url,
            youtube_api_url=sim.api_url,
            youtube_api_key=SECRET,
            poll_interval_s=60,
            playlist_refresh_s=900,
        )
        self.sleeps: list[float] = []

    def poller(self, **kw) -> Poller:
        kw.setdefault("backoff", Backoff(sleep=self.sleeps.append, rng=random.Random(7)))
        kw.setdefault("timeout_s", 2.0)
        return Poller(self.settings, self.engine, KafkaBus(self.bootstrap), topic=self.topic, **kw)

    def watch(self, playlist_id: str | None = None, video_id: str | None = None) -> int:
        kind = "playlist" if playlist_id else "video"
        with session_scope(self.engine) as session:
            row = Watch(owner="t", kind=kind, playlist_id=playlist_id, video_id=video_id)
            session.add(row)
            session.flush()
            return row.id

    def get_watch(self, watch_id: int) -> Watch:
        with session_scope(self.engine) as session:
            return session.get(Watch, watch_id)

    def members(self, watch_id: int) -> set[str]:
        with session_scope(self.engine) as session:
            rows = session.exec(select(WatchVideo).where(WatchVideo.watch_id == watch_id))
            return {row.video_id for row in rows}

    def video(self, video_id: str) -> Video | None:
        with session_scope(self.engine) as session:
            return session.get(Video, video_id)

    def snapshots(self) -> list[VideoSnapshot]:
        records = read_all(self.bootstrap, self.topic, timeout_s=15)
        out = []
        for key, value in records:
            snapshot = VideoSnapshot.from_bytes(value)
            assert key == snapshot.video_id.encode()
            out.append(snapshot)
        return out


@pytest.fixture
def h(database_url, kafka_bootstrap, topic_factory):
    with start_youtube_sim() as url:
        sim = SimControl(url)
        yield Harness(sim, database_url, kafka_bootstrap, topic_factory("youtube_videos"))
        sim.close()


def test_500_videos_cost_20_units_first_and_10_later(h):
    ids = vids(500)
    h.sim.add_playlist("PLbig", [sim_video(v, likes=i) for i, v in enumerate(ids)])
    watch = h.watch(playlist_id="PLbig")
    poller = h.poller()
    first = poller.run_cycle()
    assert (first.units, first.snapshots, first.missing) == (20, 500, [])
    assert h.sim.units() == 20
    second = poller.run_cycle()  # membership is fresh: statistics only
    assert second.units == 10
    assert h.sim.units() == 30
    snapshots = h.snapshots()
    assert len(snapshots) == 1000
    assert {s.video_id for s in snapshots} == set(ids)
    assert h.members(watch) == set(ids)
    assert h.video(ids[7]).likes == 7
    with session_scope(h.engine) as session:
        assert quota.units_used_today(session) == 30
        report = quota.quota_report(session, h.settings)
    assert report["units_used_today"] == 30
    assert report["units_per_day"] == 10_000
    assert report["exhausted_until"] is None
    assert poller.status()["last_cycle_units"] == 10


def test_a_video_in_several_watches_is_polled_once(h):
    shared = vids(30, "s")
    h.sim.add_playlist("PLone", [sim_video(v) for v in shared + vids(30, "o")])
    h.sim.add_playlist("PLtwo", [sim_video(v) for v in shared + vids(30, "t")])
    w1, w2 = h.watch(playlist_id="PLone"), h.watch(playlist_id="PLtwo")
    w3 = h.watch(video_id=shared[0])
    w4 = h.watch(playlist_id="PLone")  # a second owner's watch on the same playlist
    report = h.poller().run_cycle()
    assert report.videos == 90
    assert report.units == 2 * 2 + 2  # each playlist listed once (2 pages), 90 videos in 2 calls
    snapshots = h.snapshots()
    assert len(snapshots) == 90 == len({s.video_id for s in snapshots})
    assert h.members(w1) == h.members(w4) == set(shared + vids(30, "o"))
    assert h.members(w2) == set(shared + vids(30, "t"))
    assert h.members(w3) == {shared[0]}


def test_hidden_likes_and_disabled_comments_are_null_not_zero(h):
    a, b = vids(2)
    h.sim.add_playlist("PLn", [sim_video(a, likes=4, comments=2), sim_video(b, likes=9)])
    h.sim.patch_video(a, likes=None, comments=None)
    h.watch(playlist_id="PLn")
    h.poller().run_cycle()
    by_id = {s.video_id: s for s in h.snapshots()}
    assert (by_id[a].likes, by_id[a].comments) == (None, None)
    assert (by_id[b].likes, by_id[b].comments) == (9, 0)
    assert h.video(a).likes is None and h.video(a).comments is None


def test_deleted_and_private_videos_are_marked_missing(h):
    a, b, c = vids(3)
    h.sim.add_playlist("PLm", [sim_video(v) for v in (a, b, c)])
    h.sim.patch_video(b, privacy="private")
    playlist_watch = h.watch(playlist_id="PLm")
    video_watch = h.watch(video_id=c)
    gone_watch = h.watch(video_id="zzzzzzzzzzz")  # never existed
    h.sim.patch_video(c, privacy="deleted")
    report = h.poller().run_cycle()
    assert sorted(report.missing) == sorted([b, c, "zzzzzzzzzzz"])
    assert [s.video_id for s in h.snapshots()] == [a]
    assert h.video(b).status == "missing" and h.video(a).status == "ok"
    assert h.get_watch(playlist_watch).status == "active"
    assert h.get_watch(video_watch).status == "error"
    assert "deleted or private" in h.get_watch(gone_watch).error
    # the video comes back: its watch recovers
    h.sim.patch_video(c, privacy="public")
    h.poller().run_cycle()
    assert h.get_watch(video_watch).status == "active"
    assert h.video(c).status == "ok"


def test_playlist_not_found_fails_only_its_watches_and_recovers(h):
    h.sim.add_playlist("PLok", [sim_video(v) for v in vids(3)])
    good, bad = h.watch(playlist_id="PLok"), h.watch(playlist_id="PLgone")
    clock = FakeClock()
    poller = h.poller(clock=clock)
    report = poller.run_cycle()
    assert report.snapshots == 3 and report.error is None
    assert h.get_watch(good).status == "active"
    broken = h.get_watch(bad)
    assert broken.status == "error" and "playlistNotFound" in broken.error
    # not asked again every cycle: only at the playlist refresh cadence
    h.sim.add_playlist("PLgone", [sim_video(v) for v in vids(2, "g")])
    before = h.sim.units()
    clock.advance(60)
    assert poller.run_cycle().units == 1 == h.sim.units() - before  # statistics only
    assert h.get_watch(bad).status == "error"
    clock.advance(h.settings.playlist_refresh_s)
    poller.run_cycle()
    healed = h.get_watch(bad)
    assert (healed.status, healed.error) == ("active", None)
    assert h.members(bad) == set(vids(2, "g"))


def test_quota_exceeded_stops_until_pacific_midnight(h, caplog):
    h.sim.add_playlist("PLq", [sim_video(v) for v in vids(120)])
    h.watch(playlist_id="PLq")
    h.sim.set_quota(daily_limit=4)  # 3 playlist pages + 1 of the 3 statistics calls
    poller = h.poller()
    report = poller.run_cycle()
    assert "quotaExceeded" in report.error
    assert report.snapshots == 50  # what was fetched before the wall still goes out
    assert len(h.snapshots()) == 50
    reset = quota.next_reset(report.started_at)
    assert poller.status()["quota_exhausted_until"] == reset.strftime("%Y-%m-%dT%H:%M:%SZ")
    with session_scope(h.engine) as session:
        row = session.get(QuotaDay, quota.quota_day(report.started_at))
        assert row.units_used == 5 == h.sim.units()  # the refused call is counted too
        assert quota.quota_report(session, h.settings)["exhausted_until"] is not None
    # no more calls until the reset, in this process or after a restart
    assert poller.tick() is None
    restarted = h.poller().run_cycle()
    assert restarted.skipped == "quota exhausted" and restarted.units == 0
    assert h.sim.units() == 5
    assert SECRET not in caplog.text


def test_transient_errors_are_retried_with_backoff(h, caplog):
    caplog.set_level(logging.DEBUG)
    h.sim.add_playlist("PLr", [sim_video(v) for v in vids(5)])
    h.watch(playlist_id="PLr")
    h.sim.fault("backendError", endpoint="videos")
    h.sim.fault("rateLimitExceeded", endpoint="videos")
    h.sim.fault("serviceUnavailable", endpoint="playlistItems")
    report = h.poller().run_cycle()
    assert report.error is None and report.snapshots == 5
    assert report.units == 5 == h.sim.units()  # 2 ok + 3 failed, all charged
    # first retries wait 0.5-1 s (base 1 s, equal jitter), the second retry of a call 1-2 s
    first_retries, second_retry = sorted(h.sleeps)[:2], sorted(h.sleeps)[2]
    assert all(0.5 <= s <= 1.0 for s in first_retries) and 1.0 <= second_retry <= 2.0
    assert SECRET not in caplog.text
    assert "key=***" in caplog.text  # httpx's request lines are there, redacted


def test_timeouts_are_retried(h):
    h.sim.add_playlist("PLt", [sim_video(v) for v in vids(2)])
    h.watch(playlist_id="PLt")
    h.sim.fault("delay", endpoint="videos", delay_s=1.5)
    report = h.poller(timeout_s=0.3).run_cycle()
    assert report.error is None and report.snapshots == 2
    assert len(h.sleeps) == 1


def test_retries_run_out_then_wait_for_the_next_cycle(h):
    h.sim.add_playlist("PLe", [sim_video(v) for v in vids(2)])
    h.watch(playlist_id="PLe")
    h.sim.fault("backendError", count=10)
    poller = h.poller()
    report = poller.run_cycle()
    assert "HTTP 500" in report.error
    assert h.sim.units() == 4  # Backoff.attempts
    assert poller.tick() is None  # no retry on the next tick
    assert poller.status()["paused_by"] == "error"


@pytest.mark.parametrize("rejection", ["invalid_key", "accessNotConfigured"])
def test_rejected_key_is_a_clear_error_without_a_hot_loop(h, caplog, rejection):
    caplog.set_level(logging.DEBUG)
    h.sim.add_playlist("PLk", [sim_video(v) for v in vids(2)])
    h.watch(playlist_id="PLk")
    if rejection == "invalid_key":
        h.sim.set_keys(["some-other-key"])
    else:
        h.sim.fault("accessNotConfigured", count=100)
    poller = h.poller()
    report = poller.run_cycle()
    assert "rejected the API key" in report.error
    assert "TUBEWATCH_YOUTUBE_API_KEY" in report.error
    assert h.sim.units() == 1 and h.sleeps == []  # no retries
    for _ in range(5):
        assert poller.tick() is None
    assert h.sim.units() == 1
    status = poller.status()
    assert status["paused_by"] == "key" and "rejected" in status["last_error"]
    assert SECRET not in caplog.text
    assert SECRET not in report.error and SECRET not in str(status)


def test_a_new_watch_is_served_at_the_next_tick(h):
    h.sim.add_playlist("PLold", [sim_video(v) for v in vids(60)])
    h.sim.add_playlist("PLnew", [sim_video(v) for v in vids(30, "n") + vids(10)])
    h.watch(playlist_id="PLold")
    poller = h.poller()
    assert poller.tick().full
    next_full = poller.status()["next_cycle_at"]
    assert poller.tick() is None  # nothing due, nothing new
    new_watch = h.watch(playlist_id="PLnew")
    report = poller.tick()
    assert report is not None and not report.full
    assert report.videos == 30  # the 10 shared videos were polled a moment ago
    assert report.units == 2  # one playlist page + one statistics call
    assert h.members(new_watch) == set(vids(30, "n") + vids(10))
    assert poller.status()["next_cycle_at"] == next_full
    assert poller.tick() is None


def test_deleted_and_paused_watches_are_not_polled(h):
    h.sim.add_playlist("PLa", [sim_video(v) for v in vids(3)])
    h.sim.add_playlist("PLb", [sim_video(v) for v in vids(3, "b")])
    keep, drop = h.watch(playlist_id="PLa"), h.watch(playlist_id="PLb")
    poller = h.poller()
    assert poller.run_cycle().videos == 6
    with session_scope(h.engine) as session:
        session.delete(session.get(Watch, drop))
    assert poller.run_cycle().videos == 3
    with session_scope(h.engine) as session:
        session.get(Watch, keep).paused = True
    report = poller.run_cycle()
    assert report.videos == 0 and report.units == 0
    # un-paused, it is served at the next tick, not after a whole interval
    with session_scope(h.engine) as session:
        session.get(Watch, keep).paused = False
    again = poller.tick()
    assert again is not None and not again.full and again.videos == 3


def test_run_loop_polls_and_stops(h):
    h.sim.add_playlist("PLloop", [sim_video(v) for v in vids(4)])
    h.watch(playlist_id="PLloop")
    poller = h.poller(tick_s=0.05)
    before = REGISTRY.get_sample_value("tubewatch_poller_snapshots_total") or 0
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop,))
    thread.start()
    try:
        deadline = datetime.now(UTC).timestamp() + 20
        while poller.status()["last_cycle_at"] is None:
            assert datetime.now(UTC).timestamp() < deadline, "no cycle ran"
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(h.snapshots()) == 4
    after = REGISTRY.get_sample_value("tubewatch_poller_snapshots_total")
    assert after - before == 4


def test_the_key_never_reaches_logs_or_errors_when_unreachable(database_url, caplog):
    caplog.set_level(logging.DEBUG)
    settings = Settings(
        database_url=database_url,
        youtube_api_url="http://127.0.0.1:9/youtube/v3",  # nothing listens on port 9
        youtube_api_key=SECRET,
    )
    from tubewatch.poller.youtube import TransientError, YouTubeClient

    client = YouTubeClient(
        settings.youtube_api_url,
        settings.youtube_api_key,
        backoff=Backoff(attempts=2, sleep=lambda s: None),
    )
    with pytest.raises(TransientError) as caught:
        client.videos(["aaaaaaaaaaa"])
    assert SECRET not in str(caught.value) and SECRET not in repr(client)
    assert SECRET not in caplog.text


def test_cli_once_runs_one_cycle_on_the_embedded_bus(database_url, monkeypatch, tmp_path, capsys):
    """`tubewatch poller --once` with no Kafka configured: one cycle, snapshots on the bus."""
    import argparse

    from tubewatch.embedded_bus import EmbeddedBus
    from tubewatch.poller import cli
    from tubewatch.settings import get_settings

    with start_youtube_sim() as url:
        sim = SimControl(url)
        sim.add_playlist("PLcli", [sim_video(v, likes=1) for v in vids(3)])
        for name, value in {
            "DATABASE_URL": database_url,
            "YOUTUBE_API_URL": sim.api_url,
            "YOUTUBE_API_KEY": SECRET,
            "DATA_DIR": str(tmp_path / "data"),
        }.items():
            monkeypatch.setenv(f"TUBEWATCH_{name}", value)
        monkeypatch.delenv("TUBEWATCH_KAFKA_BOOTSTRAP", raising=False)
        get_settings.cache_clear()
        try:
            engine = get_engine(database_url)
            init_db(engine)
            with session_scope(engine) as session:
                session.add(Watch(owner="t", kind="playlist", playlist_id="PLcli"))
            assert cli.main(argparse.Namespace(once=True)) == 0
            assert sim.units() == 2
            sim.set_keys(["another-key"])
            assert cli.main(argparse.Namespace(once=True)) == 1  # a failed cycle fails the exit
        finally:
            get_settings.cache_clear()
            sim.close()
    out = capsys.readouterr().out
    assert "3 snapshots, 0 missing, 2 quota units" in out
    assert "rejected the API key" in out and SECRET not in out
    consumer = EmbeddedBus(get_engine(database_url)).consumer("t", "youtube_videos", VideoSnapshot)
    got = consumer.poll_batch(10, timeout_s=2)
    assert sorted(p.value.video_id for p in got) == vids(3)
    consumer.close()


class _UndeliverableProducer:
    """A producer whose broker never acknowledges: the edge of the world, failing."""

    def produce(self, *args, **kwargs):
        pass

    def poll(self, timeout=0):
        return 0

    def flush(self, timeout=None):
        return 1  # one message still undelivered


class _BrokerDownBus:
    def producer(self, **overrides):
        return _UndeliverableProducer()


def test_a_failing_broker_does_not_make_the_loop_spend_quota(h):
    h.sim.add_playlist("PLdown", [sim_video(v) for v in vids(3)])
    h.watch(playlist_id="PLdown")
    poller = Poller(h.settings, h.engine, _BrokerDownBus(), topic=h.topic, tick_s=0.01)
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop,))
    thread.start()
    stop.wait(0.5)  # ~50 ticks
    stop.set()
    thread.join(timeout=10)
    assert h.sim.units() == 2  # one cycle, then a pause of poll_interval_s
    status = poller.status()
    assert status["paused_by"] == "error" and "not delivered" in status["last_error"]


def test_calls_that_never_left_the_machine_cost_no_quota_but_read_timeouts_do():
    """Connect failures cannot have reached YouTube; a read timeout may have been charged."""
    import httpx

    from tubewatch.poller.youtube import TransientError, YouTubeClient

    failures = iter([httpx.ConnectTimeout("connect"), httpx.ConnectError("refused")])

    def handler(request: httpx.Request) -> httpx.Response:
        raise next(failures, httpx.ReadTimeout("read"))

    charged: list[int] = []
    client = YouTubeClient(
        "http://youtube.invalid/youtube/v3",
        "k3y",
        backoff=Backoff(attempts=3, sleep=lambda s: None),
        on_call=lambda endpoint, outcome, units: charged.append(units),
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(TransientError) as info:
        client.videos(["Tk23kQRFWcw"])
    assert charged == [0, 0, 1]
    assert "k3y" not in str(info.value)
