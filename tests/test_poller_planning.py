"""Pure parts of the poller: backoff delays, cost and interval planning, the quota day."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from tubewatch import quota
from tubewatch.backoff import Backoff
from tubewatch.poller.planner import plan_interval, playlist_units, stats_units


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    slept: list[float] = []
    backoff = Backoff(base_s=1, factor=2, max_s=10, sleep=slept.append, rng=random.Random(1))
    delays = [backoff.delay(n) for n in range(6)]
    for retry, delay in enumerate(delays):
        nominal = min(10, 2**retry)
        assert nominal / 2 <= delay <= nominal
    assert delays[5] <= 10
    assert len({round(d, 6) for d in delays}) == 6  # jittered, not a fixed ladder
    assert backoff.wait(3) == slept[0]


def test_costs():
    assert [stats_units(n) for n in (0, 1, 50, 51, 500)] == [0, 1, 1, 2, 10]
    assert [playlist_units(n) for n in (0, 50, 51, 500)] == [1, 1, 2, 10]


def test_interval_is_the_target_when_the_quota_allows():
    # 10 units a minute for a whole day is 14,400 units: more than 10,000, so it stretches;
    # 1 unit a minute (1,440 a day) fits, so it stays at the target.
    midnight = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)  # 00:00 in Los Angeles (PST)
    small = plan_interval(
        now=midnight,
        used_today=0,
        units_per_day=10_000,
        poll_interval_s=60,
        units_per_cycle=1,
        refresh_units=0,
        playlist_refresh_s=900,
    )
    assert small.interval_s == 60
    big = plan_interval(
        now=midnight,
        used_today=0,
        units_per_day=10_000,
        poll_interval_s=60,
        units_per_cycle=10,
        refresh_units=10,
        playlist_refresh_s=900,
    )
    # budget: 9,000 (10% reserve) - 960 for refreshes (10 units every 15 min) = 8,040
    assert big.interval_s == 86_400 * 10 / 8_040
    assert big.projected_units_today <= 10_000 * 0.9


def test_interval_waits_for_the_reset_when_the_day_is_spent():
    now = datetime(2026, 11, 28, 20, 0, tzinfo=UTC)  # 12:00 in Los Angeles
    plan = plan_interval(
        now=now,
        used_today=9_500,
        units_per_day=10_000,
        poll_interval_s=60,
        units_per_cycle=5,
        refresh_units=0,
        playlist_refresh_s=900,
    )
    assert plan.interval_s == 12 * 3600
    assert plan.projected_units_today <= 9_505


def test_quota_day_turns_at_pacific_midnight_across_dst():
    assert quota.quota_day(datetime(2026, 11, 28, 7, 59, tzinfo=UTC)) == "2026-11-27"
    assert quota.quota_day(datetime(2026, 11, 28, 8, 0, tzinfo=UTC)) == "2026-11-28"
    # summer: PDT is UTC-7
    assert quota.next_reset(datetime(2026, 7, 1, 12, 0, tzinfo=UTC)) == datetime(
        2026, 7, 2, 7, 0, tzinfo=UTC
    )
    # the night DST ends (1 Nov 2026) the reset is at 08:00 UTC again
    assert quota.next_reset(datetime(2026, 11, 1, 12, 0, tzinfo=UTC)) == datetime(
        2026, 11, 2, 8, 0, tzinfo=UTC
    )


def test_quota_report_counts_units_and_exhaustion(database_url):
    from tubewatch.db import get_engine, init_db, session_scope
    from tubewatch.settings import Settings

    engine = get_engine(database_url)
    init_db(engine)
    settings = Settings(database_url=database_url, quota_units_per_day=1_000)
    noon = datetime(2026, 11, 28, 20, 0, tzinfo=UTC)  # 12:00 Pacific: half the day gone
    with session_scope(engine) as session:
        quota.add_units(session, 30, noon)
        quota.add_units(session, 20, noon)
    with session_scope(engine) as session:
        report = quota.quota_report(session, settings, noon)
    assert report == {
        "day": "2026-11-28",
        "units_used_today": 50,
        "units_per_day": 1_000,
        "projected_units_today": 100,  # the morning's rate kept up until midnight
        "exhausted_until": None,
        "resets_at": "2026-11-29T08:00:00Z",
    }
    with session_scope(engine) as session:
        until = quota.mark_exhausted(session, noon)
    with session_scope(engine) as session:
        assert quota.exhausted_until(session, noon) == until
        assert quota.quota_report(session, settings, noon)["exhausted_until"] == (
            "2026-11-29T08:00:00Z"
        )
        # the next Pacific day starts fresh
        tomorrow = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
        assert quota.exhausted_until(session, tomorrow) is None
        assert quota.units_used_today(session, tomorrow) == 0
