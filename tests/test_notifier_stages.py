"""The notifier's stages one by one: render, match rules, retry policy, digest clock, ledger."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import apprise
import pytest
from sqlmodel import Session, select

from tubewatch.db import get_engine, init_db
from tubewatch.messages import VideoChange
from tubewatch.models import Delivery, Subscription, Watch, WatchVideo
from tubewatch.notifier import ledger
from tubewatch.notifier.matching import followed_changes, match_changes
from tubewatch.notifier.render import MetricChange, VideoAlert, render, render_for
from tubewatch.notifier.retry import RetryPolicy
from tubewatch.notifier.service import DigestClock

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
T0 = datetime(2026, 11, 28, 12, 1, tzinfo=UTC)


def change(video_id="Tk23kQRFWcw", likes=(3020, 3023), comments=(41, 41), views=(10, 10), **kw):
    return VideoChange(
        video_id=video_id,
        title=kw.get("title", "Cats"),
        likes_previous=likes[0],
        likes_current=likes[1],
        comments_previous=comments[0],
        comments_current=comments[1],
        views_previous=views[0],
        views_current=views[1],
        polled_at=kw.get("polled_at", T0),
    )


def alert(video_id="Tk23kQRFWcw", title="Cats", *changes):
    return VideoAlert(video_id, title, changes or (MetricChange("likes", 3020, 3023),))


# --- render ------------------------------------------------------------------------------
def test_single_alert_names_title_metrics_and_link():
    a = alert(
        "Tk23kQRFWcw", "Cats", MetricChange("likes", 3020, 3023), MetricChange("comments", 41, 40)
    )
    title, body = render([a], markdown=False)
    assert title == "Cats: likes +3, comments -1"
    assert body.splitlines() == [
        "likes: 3020 → 3023 (+3)",
        "comments: 41 → 40 (-1)",
        "https://youtu.be/Tk23kQRFWcw",
    ]
    _, md = render([a], markdown=True)
    assert "**likes**: 3020 → 3023 (+3)" in md


def test_digest_lists_every_video_with_its_link():
    alerts = [alert(f"vid{i:08d}", f"Video {i}") for i in range(3)]
    title, body = render(alerts, markdown=False)
    assert title == "3 videos changed"
    for i in range(3):
        assert f"Video {i}" in body and f"https://youtu.be/vid{i:08d}" in body


def test_telegram_digest_stays_under_4096_and_keeps_whole_videos():
    plugin = apprise.Apprise.instantiate(f"tgram://{TOKEN}/12345")
    alerts = [alert(f"vid{i:08d}", f"A rather long video title number {i}") for i in range(400)]
    rendered = render_for(plugin, alerts)
    assert rendered.body_format == apprise.NotifyFormat.MARKDOWN
    assert len(rendered.title) + len(rendered.body) < 4096
    assert rendered.body.rstrip().endswith("more")
    shown = rendered.body.count("https://youtu.be/")
    assert 10 < shown < 400
    assert f"… and {400 - shown} more" in rendered.body


def test_plain_text_for_channels_without_markdown():
    rendered = render_for(apprise.Apprise.instantiate("ntfy://ntfy.example.org/topic"), [alert()])
    assert rendered.body_format == apprise.NotifyFormat.TEXT and "**" not in rendered.body
    assert len(rendered.body) <= 7800


def test_markdown_link_survives_underscores_in_the_video_id():
    """Video ids use ``_`` and ``-``: as a bare URL in Markdown, ``-_-_-_-_-_A`` turned into
    emphasis and the link broke. Checked through apprise's own Markdown-to-HTML conversion
    (Telegram, email) and Slack's dialect."""
    from apprise.conversion import convert_between

    video_id = "-_-_-_-_-_A"
    link = f"https://youtu.be/{video_id}"
    tgram = render_for(apprise.Apprise.instantiate(f"tgram://{TOKEN}/12345"), [alert(video_id)])
    assert tgram.body_format == apprise.NotifyFormat.MARKDOWN
    html = convert_between(apprise.NotifyFormat.MARKDOWN, apprise.NotifyFormat.HTML, tgram.body)
    assert f'href="{link}"' in html and f">{link}</a>" in html, html
    slack = apprise.Apprise.instantiate("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ")
    rendered = render_for(slack, [alert(video_id)])
    converted = slack.dialect_convert(rendered.body, rendered.body_format)
    assert f"<{link}>" in converted, converted
    assert render([alert(video_id)], markdown=False)[1].endswith(f"\n{link}")


def test_titles_escaped_only_where_markdown_becomes_html():
    """Telegram (Markdown to HTML) shows an escaped title as typed; Slack takes the title as
    plain text and has no backslash escapes, so there the title goes as it is."""
    from apprise.conversion import convert_between

    name = "Tom_and_Jerry (Official) - v1.2 *live*"
    slack = apprise.Apprise.instantiate("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ")
    single = render_for(slack, [alert("Tk23kQRFWcw", name)])
    assert single.title == f"{name}: likes +3"
    digest = render_for(slack, [alert("Tk23kQRFWcw", name), alert("kJQP7kiw5Fk", "Other")])
    assert "\\" not in digest.body and name in digest.body
    tgram = apprise.Apprise.instantiate(f"tgram://{TOKEN}/12345")
    escaped = render_for(tgram, [alert("Tk23kQRFWcw", name)])
    shown = convert_between(apprise.NotifyFormat.MARKDOWN, apprise.NotifyFormat.HTML, escaped.title)
    assert "Tom_and_Jerry (Official) - v1.2 *live*: likes +3" in shown, shown


# --- match rules ---------------------------------------------------------------------------
def test_min_delta_and_nulls():
    c = change(likes=(100, 103), comments=(None, 5), views=(1000, 1500))
    assert [m.metric for m in followed_changes(c, ["likes", "comments", "views"], {})] == [
        "likes",
        "views",
    ]
    assert followed_changes(c, ["views"], {"views": 1000}) == ()
    assert [m.metric for m in followed_changes(c, ["likes"], {"likes": 3})] == ["likes"]
    down = change(likes=(100, 90))
    assert followed_changes(down, ["likes"], {"likes": 5})[0].delta == -10
    assert followed_changes(c, ["favorites", "nonsense"], {}) == ()


@pytest.fixture
def engine(database_url):
    engine = get_engine(database_url)
    init_db(engine)
    return engine


def _watch(session, owner="alice", **kw) -> Watch:
    watch = Watch(owner=owner, kind="video" if "video_id" in kw else "playlist", **kw)
    session.add(watch)
    session.flush()
    return watch


def _sub(session, watch, owner="alice", **kw) -> Subscription:
    sub = Subscription(owner=owner, watch_id=watch.id, targets=["x"], **kw)
    session.add(sub)
    session.flush()
    return sub


def test_match_covers_video_and_playlist_watches_and_skips_paused(engine):
    vid = "Tk23kQRFWcw"
    with Session(engine) as s:
        video_watch = _watch(s, video_id=vid)
        playlist = _watch(s, "bob", playlist_id="PLx")
        s.add(WatchVideo(watch_id=playlist.id, video_id=vid))
        paused_watch = _watch(s, video_id=vid, paused=True)
        other = _watch(s, video_id="AAAAAAAAAAA")
        wanted = [_sub(s, video_watch).id, _sub(s, playlist, "bob").id]
        _sub(s, video_watch, paused=True)
        _sub(s, paused_watch)
        _sub(s, other)
        _sub(s, video_watch, metrics=["views"])  # views did not move
        _sub(s, video_watch, min_delta={"likes": 10})  # moved by 3 only
        s.commit()
        matched = match_changes(s, [change(vid)])
    assert sorted(m.subscription_id for _, m in matched) == sorted(wanted)
    assert {m.owner for _, m in matched} == {"alice", "bob"}


# --- retry policy ---------------------------------------------------------------------------
def test_backoff_grows_with_jitter_and_honours_retry_after():
    policy = RetryPolicy(base_s=1, factor=2, max_delay_s=30, max_attempts=5, rng=random.Random(1))
    for attempts, cap in [(1, 1), (2, 2), (3, 4), (8, 30)]:
        delays = [policy.delay(attempts) for _ in range(200)]
        assert all(cap * 0.1 <= d <= cap for d in delays)
        assert max(delays) - min(delays) > cap * 0.5  # jittered
    assert policy.delay(1, retry_after=12) >= 12
    assert policy.delay(1, retry_after=10**9) == policy.max_retry_after_s
    assert not policy.exhausted(4) and policy.exhausted(5)


# --- digest clock ---------------------------------------------------------------------------
def test_digest_clock_sends_first_at_once_then_one_per_window():
    clock = DigestClock(3)
    t = datetime(2026, 11, 28, 12, 0, 0)
    assert clock.due_at(1, t) == t
    assert clock.due_at(1, t) == t  # same batch: same moment, one group
    held = clock.due_at(1, t + timedelta(seconds=1))
    assert held == t + timedelta(seconds=3)
    assert clock.due_at(1, t + timedelta(seconds=2)) == held  # joins the held digest
    assert clock.due_at(1, t + timedelta(seconds=4)) == t + timedelta(seconds=6)
    assert clock.due_at(2, t + timedelta(seconds=1)) == t + timedelta(seconds=1)
    assert clock.due_at(1, t + timedelta(seconds=20)) == t + timedelta(seconds=20)
    assert DigestClock(0).due_at(1, t) == t


# --- ledger -------------------------------------------------------------------------------
def test_record_is_idempotent_per_event_and_subscription(engine):
    with Session(engine) as s:
        watch = _watch(s, video_id="Tk23kQRFWcw")
        subs = [_sub(s, watch).id, _sub(s, watch).id]
        s.commit()
        matched = match_changes(s, [change()])
    assert ledger.record(engine, matched, lambda sub, now: now) == 2
    again = match_changes(Session(engine), [change(), change()])
    assert ledger.record(engine, again, lambda sub, now: now) == 0
    later = match_changes(Session(engine), [change(polled_at=T0 + timedelta(minutes=1))])
    assert ledger.record(engine, later, lambda sub, now: now) == 2
    with Session(engine) as s:
        rows = s.exec(select(Delivery)).all()
    assert len(rows) == 4
    assert {r.event_id for r in rows} == {
        "Tk23kQRFWcw@2026-11-28T12:01:00Z",
        "Tk23kQRFWcw@2026-11-28T12:02:00Z",
    }
    assert {r.subscription_id for r in rows} == set(subs)
    assert all(r.status == "retrying" and r.attempts == 0 for r in rows)
    assert rows[0].payload["changes"] == [["likes", 3020, 3023]]


def test_claim_leases_rows_so_a_second_claim_gets_none(engine):
    with Session(engine) as s:
        watch = _watch(s, video_id="Tk23kQRFWcw")
        _sub(s, watch)
        s.commit()
        ledger.record(engine, match_changes(s, [change()]), lambda sub, now: now)
    first = ledger.claim(engine, 10, lease_s=60)
    assert len(first) == 1
    assert ledger.claim(engine, 10, lease_s=60) == []
    assert first[0].next_attempt_at > ledger.db_now() + timedelta(seconds=50)


def test_claim_takes_whole_subscriptions_so_digests_are_not_split(engine):
    with Session(engine) as s:
        playlist = _watch(s, playlist_id="PLx")
        for i in range(5):
            s.add(WatchVideo(watch_id=playlist.id, video_id=f"vid{i:08d}"))
        first, second = _sub(s, playlist).id, _sub(s, playlist).id
        s.commit()
        matched = match_changes(s, [change(f"vid{i:08d}") for i in range(5)])
    ledger.record(engine, matched, lambda sub, now: now)
    claimed = ledger.claim(engine, 1, lease_s=60)
    assert len(claimed) == 5 and {r.subscription_id for r in claimed} == {first}
    rest = ledger.claim(engine, 1, lease_s=60)
    assert len(rest) == 5 and {r.subscription_id for r in rest} == {second}
