"""The poller: every active watch's videos, polled once a cycle, produced to `youtube_videos`.

A cycle reads the non-paused watches from the database (so watches created or deleted through
the API take effect without a restart), lists the playlists whose membership is older than
``playlist_refresh_s``, polls the union of all watched videos once (a video in several watches
or playlists costs nothing extra) in ``videos.list`` calls of 50, produces one
`VideoSnapshot` per video keyed by its id, flushes, and then records membership, the latest
snapshot, watch status and the quota units spent.

Between full cycles the poller ticks every ``tick_s``: a watch it has not served yet gets a
small cycle of its own at the next tick, instead of waiting out a stretched interval.

Errors: ``quotaExceeded`` stops polling until midnight Pacific time (recorded in `QuotaDay`, so
a restart honours it); a rejected key pauses for ``key_retry_s`` with one clear log line per
attempt; a missing playlist puts only its watches in status ``error``; transient failures are
retried with backoff inside the client and otherwise wait for the next cycle.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from tubewatch import quota
from tubewatch.backoff import Backoff
from tubewatch.bus import Bus
from tubewatch.db import session_scope
from tubewatch.kafka import YOUTUBE_VIDEOS, flush_or_raise, produce_message
from tubewatch.messages import VideoSnapshot, format_timestamp
from tubewatch.models import Video, Watch, WatchVideo
from tubewatch.poller import metrics
from tubewatch.poller.planner import plan_interval, playlist_units, stats_units
from tubewatch.poller.youtube import (
    MAX_IDS,
    KeyRejected,
    PlaylistUnavailable,
    QuotaExceeded,
    VideoStats,
    YouTubeClient,
    YouTubeError,
)
from tubewatch.settings import Settings

log = logging.getLogger(__name__)

VIDEO_MISSING = "video not found (deleted or private)"


@dataclass(frozen=True)
class WatchRow:
    """The part of a `Watch` the poller needs, detached from any session."""

    id: int
    kind: str
    playlist_id: str | None
    video_id: str | None


@dataclass
class CycleReport:
    """What one cycle did; returned by `Poller.run_cycle` and kept for `status()`."""

    started_at: datetime
    full: bool
    units: int = 0
    videos: int = 0
    snapshots: int = 0
    missing: list[str] = field(default_factory=list)
    playlists_listed: int = 0
    watch_errors: dict[int, str] = field(default_factory=dict)
    error: str | None = None
    skipped: str | None = None


class Poller:
    """Polls YouTube for every active watch. One instance per process (it owns a producer)."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        bus: Bus,
        *,
        topic: str = YOUTUBE_VIDEOS,
        tick_s: float = 1.0,
        key_retry_s: float = 600.0,
        timeout_s: float = 10.0,
        backoff: Backoff | None = None,
        clock: Callable[[], datetime] = quota.now_utc,
    ):
        self.settings = settings
        self.engine = engine
        self.topic = topic
        self.tick_s = tick_s
        self.key_retry_s = key_retry_s
        self.clock = clock
        self._stop = threading.Event()
        self._producer = bus.producer()
        # The default backoff sleeps on the stop event `run` is given, so shutdown cuts it short.
        backoff = backoff or Backoff(sleep=lambda seconds: self._stop.wait(seconds))
        self.client = YouTubeClient(
            settings.youtube_api_url,
            settings.youtube_api_key,
            timeout_s=timeout_s,
            backoff=backoff,
            on_call=self._count_call,
        )
        self._membership: dict[str, tuple[datetime, list[str]]] = {}  # listed at, video ids
        self._unavailable: dict[str, tuple[datetime, str]] = {}  # checked at, reason
        self._served: set[int] = set()  # watches whose videos have been polled
        self._recent: set[str] = set()  # videos polled in the last full cycle
        self._next_full_at: datetime | None = None
        self._blocked_until: datetime | None = None
        self._blocked_by: str | None = None  # "quota" | "key" | "error"
        self._missing: set[str] = set()  # videos videos.list left out (deleted or private)
        self._units = 0  # counted, not yet written to QuotaDay
        self._last: CycleReport | None = None
        self._last_error: str | None = None
        self._projected: int | None = None
        self._interval_s: float | None = None  # the last planned interval (logged on change)

    # -- bookkeeping -------------------------------------------------------------------------

    def _count_call(self, endpoint: str, outcome: str, units: int) -> None:
        self._units += units
        metrics.QUOTA_UNITS.inc(units)
        metrics.CALLS.labels(endpoint=endpoint, outcome=outcome).inc()

    def status(self) -> dict:
        """A snapshot of the poller's state for health pages and `GET /quota`."""

        def ts(moment: datetime | None) -> str | None:
            return format_timestamp(moment) if moment else None

        last = self._last
        return {
            "last_cycle_at": ts(last.started_at) if last else None,
            "last_cycle_units": last.units if last else None,
            "next_cycle_at": ts(self._next_full_at),
            "quota_exhausted_until": ts(self._blocked_until)
            if self._blocked_by == "quota"
            else None,
            "paused_until": ts(self._blocked_until),
            "paused_by": self._blocked_by,
            "projected_units_today": self._projected,
            "last_error": self._last_error,
            "watches_served": len(self._served),
        }

    # -- the loop ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Ticks until ``stop`` is set; a backoff in progress is cut short by it."""
        self._stop = stop
        log.info("poller started (topic %s)", self.topic)
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except Exception as exc:  # e.g. the broker or database is down
                    # Keep running, but wait an interval: retrying every tick would spend quota.
                    self._last_error = f"{type(exc).__name__}: {exc}"
                    pause = timedelta(seconds=self.settings.poll_interval_s)
                    self._block(self.clock() + pause, "error")
                    log.exception("poll cycle failed; next try in %s", pause)
                stop.wait(self.tick_s)
        finally:
            self._producer.flush(10)
            self.client.close()
            log.info("poller stopped")

    def tick(self) -> CycleReport | None:
        """Runs a full cycle when one is due, else a small one for watches not served yet."""
        now = self.clock()
        if self._blocked_until and now < self._blocked_until:
            return None
        watches = self._load_watches()
        if self._next_full_at is None or now >= self._next_full_at:
            return self.run_cycle(watches)
        new = [w for w in watches if w.id not in self._served]
        if new:
            return self.run_cycle(new, full=False)
        return None

    def run_cycle(self, watches: list[WatchRow] | None = None, full: bool = True) -> CycleReport:
        """One cycle over ``watches`` (default: all active). ``full=False`` serves new watches:
        it lists only playlists never listed and polls only videos the last full cycle did not.
        """
        started = time.monotonic()
        report = CycleReport(started_at=self.clock(), full=full)
        if watches is None:
            watches = self._load_watches()
        with session_scope(self.engine) as session:
            until = quota.exhausted_until(session, report.started_at)
        if until:
            report.skipped = "quota exhausted"
            self._block(until, "quota")
            self._last_error = (
                f"quotaExceeded: waiting for the quota reset at {format_timestamp(until)}"
            )
            self._finish(report, watches, {}, [], started)
            return report
        snapshots: dict[str, VideoStats] = {}
        polled: list[str] = []
        try:
            self._refresh_playlists(watches, report, full)
            wanted = self._videos_of(watches)
            if not full:
                wanted = [v for v in wanted if v not in self._recent]
            for start in range(0, len(wanted), MAX_IDS):
                chunk = wanted[start : start + MAX_IDS]
                snapshots.update(self.client.videos(chunk))
                polled.extend(chunk)
            self._last_error = None
            self._block(None, None)
        except QuotaExceeded as exc:
            with session_scope(self.engine) as session:
                self._block(quota.mark_exhausted(session, report.started_at), "quota")
            report.error = self._last_error = (
                f"quotaExceeded: waiting for the quota reset at "
                f"{format_timestamp(self._blocked_until)} ({exc})"
            )
            log.error("YouTube quota exhausted until %s", self._blocked_until)
        except KeyRejected as exc:
            self._block(report.started_at + timedelta(seconds=self.key_retry_s), "key")
            report.error = self._last_error = (
                f"YouTube rejected the API key: {exc}. Check TUBEWATCH_YOUTUBE_API_KEY and that "
                f"the YouTube Data API v3 is enabled; next try at "
                f"{format_timestamp(self._blocked_until)}"
            )
            log.error("%s", report.error)
        except YouTubeError as exc:
            # The client already retried: wait one interval rather than retry every tick.
            self._block(
                report.started_at + timedelta(seconds=self.settings.poll_interval_s), "error"
            )
            report.error = self._last_error = str(exc)
            log.warning("poll cycle incomplete: %s", exc)
        report.missing = [v for v in polled if v not in snapshots]
        self._missing.difference_update(snapshots)
        self._missing.update(report.missing)
        report.videos = len(polled)
        self._publish(snapshots.values(), report)
        self._finish(report, watches, snapshots, polled, started)
        return report

    # -- steps -------------------------------------------------------------------------------

    def _load_watches(self) -> list[WatchRow]:
        with session_scope(self.engine) as session:
            rows = session.exec(select(Watch).where(col(Watch.paused).is_(False))).all()
            return [WatchRow(w.id, w.kind, w.playlist_id, w.video_id) for w in rows]  # type: ignore[arg-type]

    def _refresh_playlists(self, watches: list[WatchRow], report: CycleReport, full: bool) -> None:
        """Lists the playlists whose membership is unknown or (in a full cycle) stale.

        A playlist found missing is checked again only every ``playlist_refresh_s`` too: a
        unit every cycle for a deleted playlist would add up to a good share of the day.
        """
        now = report.started_at
        max_age = timedelta(seconds=self.settings.playlist_refresh_s)
        playlists = {w.playlist_id for w in watches if w.kind == "playlist" and w.playlist_id}
        if full:  # forget playlists no watch uses any more
            self._membership = {p: m for p, m in self._membership.items() if p in playlists}
            self._unavailable = {p: u for p, u in self._unavailable.items() if p in playlists}
        for playlist_id in sorted(playlists):
            known = self._membership.get(playlist_id)
            if known and (not full or now - known[0] < max_age):
                continue
            failed = self._unavailable.get(playlist_id)
            if failed and now - failed[0] < max_age:
                self._fail_watches(watches, playlist_id, failed[1], report)
                continue
            try:
                ids = self.client.playlist_video_ids(playlist_id)
            except PlaylistUnavailable as exc:
                self._membership.pop(playlist_id, None)
                reason = f"{exc.reason or 'playlistNotFound'}: playlist {playlist_id} not found"
                self._unavailable[playlist_id] = (now, reason)
                self._fail_watches(watches, playlist_id, reason, report)
                continue
            report.playlists_listed += 1
            self._unavailable.pop(playlist_id, None)
            self._membership[playlist_id] = (now, ids)

    @staticmethod
    def _fail_watches(
        watches: list[WatchRow], playlist_id: str, reason: str, report: CycleReport
    ) -> None:
        for watch in watches:
            if watch.playlist_id == playlist_id:
                report.watch_errors[watch.id] = reason

    def _block(self, until: datetime | None, reason: str | None) -> None:
        """Pauses polling until ``until`` (None: resume) and says why in `status()`."""
        self._blocked_until, self._blocked_by = until, reason
        metrics.QUOTA_EXHAUSTED.set(1 if reason == "quota" else 0)

    def _videos_of(self, watches: list[WatchRow]) -> list[str]:
        """The distinct video ids the watches cover, in a stable order."""
        ids: dict[str, None] = {}
        for watch in watches:
            for video_id in self._members(watch):
                ids.setdefault(video_id, None)
        return list(ids)

    def _members(self, watch: WatchRow) -> list[str]:
        if watch.kind == "video":
            return [watch.video_id] if watch.video_id else []
        known = self._membership.get(watch.playlist_id or "")
        return known[1] if known else []

    def _publish(self, videos: Iterable[VideoStats], report: CycleReport) -> None:
        """Produces one snapshot per video and waits until the broker has them all."""
        polled_at = report.started_at
        for video in videos:
            try:
                message = VideoSnapshot(
                    video_id=video.video_id,
                    title=video.title,
                    channel_title=video.channel_title,
                    thumbnail=video.thumbnail,
                    likes=video.likes,
                    comments=video.comments,
                    views=video.views,
                    favorites=video.favorites,
                    polled_at=polled_at,
                )
            except ValidationError as exc:
                log.warning("skipping video %r: %s", video.video_id, exc.errors()[0]["msg"])
                continue
            produce_message(self._producer, self.topic, message)
            report.snapshots += 1
        flush_or_raise(self._producer)
        metrics.SNAPSHOTS.inc(report.snapshots)

    def _finish(
        self,
        report: CycleReport,
        watches: list[WatchRow],
        snapshots: dict[str, VideoStats],
        polled: list[str],
        started: float,
    ) -> None:
        """Writes membership, snapshots, watch status and units; plans the next full cycle."""
        now = report.started_at
        report.units, self._units = self._units, 0
        with session_scope(self.engine) as session:
            alive = set(session.exec(select(Watch.id)).all())
            for watch in watches:
                if watch.id in alive:
                    self._save_watch(session, watch, report, polled)
            for video_id in polled:
                self._save_video(session, video_id, snapshots.get(video_id), now)
            used = quota.add_units(session, report.units, now)
        metrics.QUOTA_UNITS_TODAY.set(used)
        if report.full:  # a watch paused or deleted since is new again when it comes back
            self._served &= {w.id for w in watches}
        if not report.error and not report.skipped:
            self._served.update(w.id for w in watches)
        if report.full:
            self._recent = set(polled)
            self._schedule(watches, used, now)
        self._last = report
        metrics.CYCLE_SECONDS.observe(time.monotonic() - started)
        log.info(
            "poll cycle (%s): %d videos, %d snapshots, %d missing, %d playlists listed, %d units",
            "full" if report.full else "new watches",
            report.videos,
            report.snapshots,
            len(report.missing),
            report.playlists_listed,
            report.units,
        )

    def _save_watch(
        self,
        session,
        watch: WatchRow,
        report: CycleReport,
        polled: list[str],
    ) -> None:
        """Status and membership of one watch, from what this cycle (or the last) learned."""
        if watch.kind == "video":
            known = watch.video_id in polled or watch.video_id in self._recent
            missing = watch.video_id in self._missing
            error = f"{VIDEO_MISSING}: {watch.video_id}" if missing else None
        else:
            error = report.watch_errors.get(watch.id)
            known = error is not None or watch.playlist_id in self._membership
        if not known:
            return  # nothing learned yet (e.g. the quota stopped the cycle): leave it
        row = session.get(Watch, watch.id)
        status = "error" if error else "active"
        if (row.status, row.error) != (status, error):
            row.status, row.error = status, error
            row.updated_at = self.clock().replace(microsecond=0)
        if error and watch.kind == "playlist":
            return
        wanted = {vid: pos for pos, vid in enumerate(self._members(watch))}
        existing = {
            link.video_id: link
            for link in session.exec(select(WatchVideo).where(WatchVideo.watch_id == watch.id))
        }
        for video_id, link in existing.items():
            if video_id not in wanted:
                session.delete(link)
            elif link.position != wanted[video_id]:
                link.position = wanted[video_id]
        for video_id, position in wanted.items():
            if video_id not in existing:
                session.add(WatchVideo(watch_id=watch.id, video_id=video_id, position=position))

    @staticmethod
    def _save_video(session, video_id: str, stats: VideoStats | None, now: datetime) -> None:
        row = session.get(Video, video_id) or Video(video_id=video_id)
        if stats is None:
            row.status = "missing"
        else:
            row.title, row.channel_title, row.thumbnail = (
                stats.title,
                stats.channel_title,
                stats.thumbnail,
            )
            row.likes, row.comments, row.views = stats.likes, stats.comments, stats.views
            row.status, row.polled_at = "ok", now
        session.add(row)

    def _schedule(self, watches: list[WatchRow], used: int, now: datetime) -> None:
        videos = len(self._videos_of(watches))
        refresh = sum(playlist_units(len(ids)) for _, ids in self._membership.values())
        plan = plan_interval(
            now=now,
            used_today=used,
            units_per_day=self.settings.quota_units_per_day,
            poll_interval_s=self.settings.poll_interval_s,
            units_per_cycle=stats_units(videos),
            refresh_units=refresh,
            playlist_refresh_s=self.settings.playlist_refresh_s,
        )
        self._projected = plan.projected_units_today
        self._next_full_at = now + timedelta(seconds=plan.interval_s)
        previous, self._interval_s = self._interval_s, plan.interval_s
        moved = previous is None or abs(plan.interval_s - previous) > 0.1 * previous
        if plan.interval_s > self.settings.poll_interval_s:
            (log.info if moved else log.debug)(
                "poll interval stretched to %.0fs to stay within %d units today (projected %d)",
                plan.interval_s,
                self.settings.quota_units_per_day,
                plan.projected_units_today,
            )
