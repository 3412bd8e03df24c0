"""The YouTube quota day: units spent, exhaustion, and the report `GET /quota` shows.

YouTube counts quota per project per day, and the day turns at midnight in
America/Los_Angeles (not UTC). Every request costs at least one unit, failed ones too, so
the poller adds every call it sends to today's `QuotaDay` row. When the API answers
``quotaExceeded`` the poller stops until the next Pacific midnight and records that instant in
``QuotaDay.exhausted_until`` so other processes (the API) can show it.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from tubewatch.models import QuotaDay
from tubewatch.settings import Settings

PACIFIC = ZoneInfo("America/Los_Angeles")
DAY_S = 24 * 3600


def _utc(moment: datetime | None) -> datetime | None:
    """Aware UTC; SQLite hands back naive datetimes, which we always stored as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)


def quota_day(now: datetime) -> str:
    """The Pacific-time date ``now`` falls in, as ``YYYY-MM-DD`` (QuotaDay's key)."""
    return now.astimezone(PACIFIC).date().isoformat()


def next_reset(now: datetime) -> datetime:
    """The next Pacific midnight after ``now``, in UTC (DST-safe: built from the local date)."""
    local_date = now.astimezone(PACIFIC).date() + timedelta(days=1)
    return datetime.combine(local_date, time(0), tzinfo=PACIFIC).astimezone(UTC)


def day_start(now: datetime) -> datetime:
    """The Pacific midnight that began ``now``'s quota day, in UTC."""
    local_date = now.astimezone(PACIFIC).date()
    return datetime.combine(local_date, time(0), tzinfo=PACIFIC).astimezone(UTC)


def seconds_left_today(now: datetime) -> float:
    return (next_reset(now) - now.astimezone(UTC)).total_seconds()


def _today(session: Session, now: datetime) -> QuotaDay:
    day = quota_day(now)
    row = session.get(QuotaDay, day)
    if row is None:
        row = QuotaDay(day=day, units_used=0)
        session.add(row)
    return row


def add_units(session: Session, units: int, now: datetime | None = None) -> int:
    """Adds ``units`` to today's count; returns today's total. The caller commits."""
    now = now or now_utc()
    row = _today(session, now)
    row.units_used += units
    row.updated_at = now.astimezone(UTC).replace(microsecond=0)
    return row.units_used


def units_used_today(session: Session, now: datetime | None = None) -> int:
    row = session.get(QuotaDay, quota_day(now or now_utc()))
    return row.units_used if row else 0


def mark_exhausted(session: Session, now: datetime | None = None) -> datetime:
    """Records that YouTube said ``quotaExceeded``; returns when the quota comes back."""
    now = now or now_utc()
    until = next_reset(now)
    row = _today(session, now)
    row.exhausted_until = until
    row.updated_at = now.astimezone(UTC).replace(microsecond=0)
    return until


def exhausted_until(session: Session, now: datetime | None = None) -> datetime | None:
    """When the quota comes back, if today's quota is known to be spent; else None."""
    now = now or now_utc()
    row = session.get(QuotaDay, quota_day(now))
    until = _utc(row.exhausted_until) if row else None
    return until if until and until > now.astimezone(UTC) else None


def quota_report(session: Session, settings: Settings, now: datetime | None = None) -> dict:
    """Today's quota as `GET /quota` shows it.

    ``projected_units_today`` extrapolates today's average rate to the end of the Pacific day
    (the elapsed time is floored at one hour so a burst right after midnight does not
    project absurd numbers). The poller plans its interval so this stays under
    ``units_per_day``.
    """
    now = (now or now_utc()).astimezone(UTC)
    used = units_used_today(session, now)
    elapsed = max((now - day_start(now)).total_seconds(), 3600.0)
    projected = used + round(used / elapsed * seconds_left_today(now))
    until = exhausted_until(session, now)
    return {
        "day": quota_day(now),
        "units_used_today": used,
        "units_per_day": settings.quota_units_per_day,
        "projected_units_today": projected,
        "exhausted_until": until.strftime("%Y-%m-%dT%H:%M:%SZ") if until else None,
        "resets_at": next_reset(now).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
