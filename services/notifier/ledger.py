"""The delivery ledger: one `Delivery` row per (change event, subscription).

The row is what makes delivery trustworthy:

- `record` inserts the rows of a whole Kafka batch in one transaction, ignoring rows that
  already exist (unique on event id and subscription). The consumer commits its offsets only
  after that, so a redelivered message, or the same change produced twice by an at-least-once
  change engine, finds its rows there and sends nothing again.
- `claim` hands due rows to a sender and leases them (``next_attempt_at`` pushed ``lease_s``
  ahead), so that another notifier instance does not send them at the same time; a sender that
  dies leaves the lease to expire and the rows are picked up again.
- `save_outcomes` writes what each target answered. Per-target results live in the row's
  ``payload["targets"]`` (keyed by a keyed hash of the target URL, never the URL), so a retry
  only goes to the targets that have not received the alert yet.

Row statuses (as served by ``GET /deliveries``): ``retrying`` until every target is settled
(also before the first attempt), then ``delivered`` (all targets got it), ``dead`` (a target
still failed after the last attempt) or ``failed`` (a target can never work: refused, cannot be
decrypted or parsed; not retried).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tubewatch.messages import VideoChange, format_timestamp
from tubewatch.models import Delivery
from tubewatch.notifier.matching import Match
from tubewatch.notifier.render import MetricChange, VideoAlert
from tubewatch.notifier.retry import RetryPolicy
from tubewatch.targets import SendResult

DELIVERED, RETRYING, FAILED, DEAD = "delivered", "retrying", "failed", "dead"
SETTLED = (DELIVERED, FAILED, DEAD)


def db_now() -> datetime:
    """Now, aware UTC with microseconds (the models' datetime columns refuse naive values)."""
    return datetime.now(UTC)


def event_id(change: VideoChange) -> str:
    """A change's identity: the same for a redelivered message and a duplicate change."""
    return f"{change.video_id}@{format_timestamp(change.polled_at)}"


def payload_of(match: Match, change: VideoChange) -> dict:
    return {
        "watch_id": match.watch_id,
        "video_id": change.video_id,
        "title": change.title,
        "polled_at": format_timestamp(change.polled_at),
        "changes": [[c.metric, c.previous, c.current] for c in match.alert.changes],
        "targets": {},
    }


def alert_of(payload: dict) -> VideoAlert:
    changes = tuple(MetricChange(m, p, c) for m, p, c in payload["changes"])
    return VideoAlert(payload["video_id"], payload.get("title"), changes)


def polled_at_of(payload: dict) -> datetime:
    return datetime.strptime(payload["polled_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _insert_ignoring_duplicates(engine: Engine):
    dialect = engine.dialect.name
    if dialect == "sqlite":
        return sqlite.insert(Delivery).on_conflict_do_nothing(
            index_elements=["event_id", "subscription_id"]
        )
    if dialect == "postgresql":
        return postgresql.insert(Delivery).on_conflict_do_nothing(
            index_elements=["event_id", "subscription_id"]
        )
    raise NotImplementedError(f"no insert-or-ignore for {dialect}")


def record(
    engine: Engine,
    matches: Iterable[tuple[VideoChange, Match]],
    due_at: Callable[[int, datetime], datetime],
) -> int:
    """Inserts the rows not yet there, in one transaction; returns how many were new.

    ``due_at(subscription_id, now)`` says when each row may first be sent (the digest window
    holds some back so that they go out together).
    """
    now = db_now()
    rows: dict[tuple[str, int], dict] = {}
    for change, match in matches:
        key = (event_id(change), match.subscription_id)
        if key in rows:
            continue
        rows[key] = {
            "owner": match.owner,
            "subscription_id": match.subscription_id,
            "event_id": key[0],
            "video_id": change.video_id,
            "status": RETRYING,
            "attempts": 0,
            "error": None,
            "payload": payload_of(match, change),
            "next_attempt_at": due_at(match.subscription_id, now),
            "created_at": now,
            "updated_at": now,
        }
    if not rows:
        return 0
    with engine.begin() as connection:
        result = connection.execute(_insert_ignoring_duplicates(engine), list(rows.values()))
    return max(result.rowcount, 0) if result.rowcount is not None else len(rows)


def claim(engine: Engine, limit: int, lease_s: float) -> list[Delivery]:
    """Due ``retrying`` rows, leased to the caller for ``lease_s`` seconds (oldest due first).

    Whole subscriptions are claimed: every due row of the subscriptions that own the ``limit``
    oldest due rows, so that a digest is never split across two claims.
    One ``UPDATE … WHERE … AND still due … RETURNING``: a row another instance leased between
    our select and our update is no longer due, so it is not returned twice.
    """
    now = db_now()
    lease_until = now + timedelta(seconds=lease_s)
    is_due = (Delivery.status == RETRYING, Delivery.next_attempt_at <= now)
    oldest = (
        select(Delivery.subscription_id)
        .where(*is_due)
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
        .scalar_subquery()
    )
    statement = (
        update(Delivery)
        .where(Delivery.subscription_id.in_(oldest), *is_due)
        .values(next_attempt_at=lease_until)
        .returning(Delivery.id)
    )
    with Session(engine, expire_on_commit=False) as session:
        ids = list(session.exec(statement).scalars())
        claimed = session.exec(select(Delivery).where(Delivery.id.in_(ids))).all() if ids else []
        session.commit()
    return sorted(claimed, key=lambda r: r.id)


@dataclass(frozen=True)
class Outcome:
    """What became of one row after an attempt (for metrics)."""

    delivery_id: int
    status: str
    payload: dict
    retried: bool


def _target_state(result: SendResult, attempts: int, policy: RetryPolicy) -> str:
    if result.ok:
        return DELIVERED
    if result.permanent:
        return FAILED
    return DEAD if policy.exhausted(attempts) else RETRYING


def _row_status(targets: dict) -> str:
    states = {t["status"] for t in targets.values()}
    if not states:
        return FAILED
    for status in (RETRYING, DEAD, FAILED):
        if status in states:
            return status
    return DELIVERED


@dataclass(frozen=True)
class Attempt:
    """One attempt at one (digest) group: its rows and what each target answered.

    ``settle_error`` settles the rows as ``failed`` without any target (deleted subscription,
    no targets). Targets still waiting for a retry that are not in ``current_targets``
    (removed from the subscription) are dropped rather than waited for.
    """

    delivery_ids: list[int]
    results: dict[str, SendResult]
    settle_error: str | None = None
    current_targets: frozenset[str] | None = None


def save_outcomes(engine: Engine, attempts: list[Attempt], policy: RetryPolicy) -> list[Outcome]:
    """Writes the per-target results of several attempts into their rows, in one transaction."""
    now = db_now()
    outcomes = []
    by_id = {i: attempt for attempt in attempts for i in attempt.delivery_ids}
    if not by_id:
        return []
    with Session(engine, expire_on_commit=False) as session:
        rows = session.exec(select(Delivery).where(Delivery.id.in_(by_id))).all()
        for row in rows:
            if row.status in SETTLED:
                continue
            outcomes.append(_apply(row, by_id[row.id], policy, now))
            session.add(row)
        session.commit()
    return outcomes


def _apply(row: Delivery, attempt: Attempt, policy: RetryPolicy, now: datetime) -> Outcome:
    payload = dict(row.payload)
    targets = dict(payload.get("targets") or {})
    row.attempts += 1
    for tid, result in attempt.results.items():
        targets[tid] = {
            "target": result.target,
            "status": _target_state(result, row.attempts, policy),
            "error": result.error,
        }
    if attempt.current_targets is not None:
        targets = {
            tid: t
            for tid, t in targets.items()
            if tid in attempt.current_targets or t["status"] != RETRYING
        }
    payload["targets"] = targets
    row.payload = payload
    row.status = FAILED if attempt.settle_error else _row_status(targets)
    errors = [f"{t['target']}: {t['error']}" for t in targets.values() if t["error"]]
    errors += [attempt.settle_error] if attempt.settle_error else []
    row.error = "; ".join(errors)[:1000] or None
    row.updated_at = now
    retried = row.status == RETRYING
    if retried:
        waits = [r.retry_after for r in attempt.results.values() if r.retry_after is not None]
        delay = policy.delay(row.attempts, max(waits, default=None))
        row.next_attempt_at = now + timedelta(seconds=delay)
    else:
        row.next_attempt_at = None
    if row.status == DELIVERED:
        row.delivered_at = now
    return Outcome(row.id, row.status, payload, retried)


def settled_targets(row: Delivery) -> set[str]:
    """Target ids this row is done with (delivered, dead or failed)."""
    targets = (row.payload or {}).get("targets") or {}
    return {tid for tid, t in targets.items() if t["status"] in SETTLED}
