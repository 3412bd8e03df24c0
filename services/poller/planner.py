"""What a poll cycle costs, and how long to wait so the day's quota lasts.

Pure functions, no I/O: the poller feeds them counts and the clock.

Cost: statistics for N distinct videos take ceil(N/50) ``videos.list`` units; a playlist of M
items takes max(1, ceil(M/50)) ``playlistItems.list`` units to list. Membership is refreshed
every ``playlist_refresh_s`` (less often than statistics), so its cost is a rate per second.

Interval: the target is ``poll_interval_s``. The poller stretches it so that the units already
spent today, plus the playlist refreshes and the statistics polls still to come before the
Pacific midnight, stay under ``units_per_day`` minus a reserve for retries. Planning against
the rest of the day (not a fixed daily rate) also absorbs a morning that spent more than
planned, e.g. on retries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from tubewatch.quota import seconds_left_today

BATCH = 50
RESERVE_FRACTION = 0.1  # kept back for retries and new watches


def stats_units(videos: int) -> int:
    """``videos.list`` units to poll ``videos`` distinct videos once."""
    return math.ceil(videos / BATCH)


def playlist_units(items: int) -> int:
    """``playlistItems.list`` units to list a playlist of ``items`` (an empty one costs 1)."""
    return max(1, math.ceil(items / BATCH))


@dataclass(frozen=True)
class Schedule:
    interval_s: float
    projected_units_today: int


def plan_interval(
    *,
    now: datetime,
    used_today: int,
    units_per_day: int,
    poll_interval_s: float,
    units_per_cycle: int,
    refresh_units: int,
    playlist_refresh_s: float,
    reserve_fraction: float = RESERVE_FRACTION,
) -> Schedule:
    """The seconds until the next statistics cycle, and what the day then projects to spend.

    ``units_per_cycle``: statistics units of one cycle; ``refresh_units``: units to list every
    watched playlist once (spent every ``playlist_refresh_s``).
    """
    left_s = seconds_left_today(now)
    refresh_rest = refresh_units * left_s / playlist_refresh_s
    budget = units_per_day * (1 - reserve_fraction) - used_today - refresh_rest
    if units_per_cycle <= 0:
        interval = poll_interval_s
    elif budget < units_per_cycle:
        interval = max(poll_interval_s, left_s)  # nothing left to plan with: wait for the reset
    else:
        interval = max(poll_interval_s, left_s * units_per_cycle / budget)
    cycles_left = math.floor(left_s / interval)
    projected = used_today + refresh_rest + cycles_left * units_per_cycle
    return Schedule(interval_s=interval, projected_units_today=round(projected))
