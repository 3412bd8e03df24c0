"""Which subscriptions a change concerns, and what it tells each of them.

A watch covers a video when the poller recorded it (`WatchVideo`) or when it is a video
watch for that very video (so a video watch works before the poller wrote its membership).
A subscription hears of a change when neither it nor its watch is paused and at least one
metric it follows moved by at least its ``min_delta`` (default 1) in absolute value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import or_
from sqlmodel import Session, select

from tubewatch.messages import VideoChange
from tubewatch.models import Subscription, Watch, WatchVideo
from tubewatch.notifier.render import MetricChange, VideoAlert


@dataclass(frozen=True)
class Match:
    subscription_id: int
    owner: str
    watch_id: int
    alert: VideoAlert


def followed_changes(
    change: VideoChange, metrics: Iterable[str], min_delta: dict[str, int]
) -> tuple[MetricChange, ...]:
    """The metrics of ``metrics`` that moved by at least their ``min_delta``, in that order."""
    moved = []
    for metric in metrics:
        delta = change.delta(metric) if metric in ("likes", "comments", "views") else None
        if not delta or abs(delta) < max(int(min_delta.get(metric, 1)), 1):
            continue
        moved.append(
            MetricChange(
                metric,
                getattr(change, f"{metric}_previous"),
                getattr(change, f"{metric}_current"),
            )
        )
    return tuple(moved)


def match_changes(session: Session, changes: list[VideoChange]) -> list[tuple[VideoChange, Match]]:
    """Every (change, subscription) pair that calls for an alert, in input order.

    One query for the whole batch: the active subscriptions of active watches covering any of
    the batch's videos.
    """
    video_ids = {c.video_id for c in changes}
    if not video_ids:
        return []
    covering = select(WatchVideo.watch_id, WatchVideo.video_id).where(
        WatchVideo.video_id.in_(video_ids)
    )
    watches_of: dict[str, set[int]] = defaultdict(set)
    for watch_id, video_id in session.exec(covering):
        watches_of[video_id].add(watch_id)
    rows = session.exec(
        select(Subscription, Watch)
        .join(Watch, Watch.id == Subscription.watch_id)
        .where(
            Subscription.paused == False,  # noqa: E712 (SQL expression)
            Watch.paused == False,  # noqa: E712
            or_(
                Watch.id.in_({w for ws in watches_of.values() for w in ws}),
                Watch.video_id.in_(video_ids),
            ),
        )
    ).all()
    subs_of_watch: dict[int, list[Subscription]] = defaultdict(list)
    for subscription, watch in rows:
        subs_of_watch[watch.id].append(subscription)
        if watch.video_id:
            watches_of[watch.video_id].add(watch.id)
    matches = []
    for change in changes:
        for watch_id in sorted(watches_of.get(change.video_id, ())):
            for sub in subs_of_watch.get(watch_id, ()):
                moved = followed_changes(change, sub.metrics, sub.min_delta or {})
                if moved:
                    alert = VideoAlert(change.video_id, change.title, moved)
                    matches.append((change, Match(sub.id, sub.owner, watch_id, alert)))
    return matches
