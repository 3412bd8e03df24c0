"""The send stage: due deliveries out through apprise, off the consumer's hot path.

A `Sender` claims due `Delivery` rows, groups them per subscription (and per set of targets
still owed the alert), so that several changes due together leave as one digest, and sends
each group on a thread pool: a slow or failing target holds one worker, never the partition
nor the other subscriptions. Each group's outcome is written as soon as its sends return,
which keeps the window in which a crash causes a re-send (alert sent, outcome not yet written)
to one HTTP round trip plus one small transaction.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import apprise
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tubewatch.models import Delivery, Subscription
from tubewatch.notifier import ledger, metrics
from tubewatch.notifier.render import render_for
from tubewatch.notifier.retry import RetryPolicy
from tubewatch.secrets import TargetCipher, redact_target
from tubewatch.targets import SendResult, TargetError, send_with_plugin, validate_target

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4096)
def _plugin_for(url: str, allow_private: bool) -> apprise.plugins.NotifyBase:
    """The validated apprise plugin for ``url``, parsed once per process (parsing a URL into a
    plugin costs about a third of a send). Refusals (TargetError) are not cached."""
    return validate_target(url, allow_private)


def target_id(key: bytes, url: str) -> str:
    """A stable id for a target that reveals nothing about it (keyed hash)."""
    return hmac.new(key, url.encode(), hashlib.sha256).hexdigest()[:16]


@dataclass
class Group:
    """Rows of one subscription owed by the same targets: one (digest) alert."""

    subscription_id: int
    rows: list[Delivery]
    targets: dict[str, str]  # target id -> URL (decrypted; never logged)
    current: set[str]
    settle_error: str | None = None
    broken: dict[str, str] = field(default_factory=dict)  # target id -> why it is unusable


class Sender:
    def __init__(
        self,
        engine: Engine,
        cipher: TargetCipher,
        id_key: bytes,
        allow_private: bool,
        policy: RetryPolicy | None = None,
        workers: int = 8,
        lease_s: float = 30.0,
        claim_limit: int = 500,
    ):
        self.engine = engine
        self.cipher = cipher
        self.id_key = id_key
        self.allow_private = allow_private
        self.policy = policy or RetryPolicy()
        self.workers = workers
        self.lease_s = lease_s
        self.claim_limit = claim_limit
        self.wake = threading.Event()  # set by the consumer when it recorded new rows

    # --- grouping --------------------------------------------------------------------------
    def _targets_of(self, subscription: Subscription) -> tuple[dict[str, str], dict[str, str]]:
        """(target id -> URL, target id -> error) for the subscription's current targets."""
        urls, broken = {}, {}
        for index, token in enumerate(subscription.targets or []):
            try:
                url = self.cipher.decrypt(token)
            except ValueError as exc:
                broken[f"undecryptable-{index}"] = str(exc)
                continue
            urls[target_id(self.id_key, url)] = url
        return urls, broken

    def group(self, rows: list[Delivery]) -> list[Group]:
        sub_ids = {r.subscription_id for r in rows}
        with Session(self.engine) as session:
            subs = {
                s.id: s
                for s in session.exec(select(Subscription).where(Subscription.id.in_(sub_ids)))
            }
        groups: dict[tuple, Group] = {}
        decrypted = {sid: self._targets_of(sub) for sid, sub in subs.items()}
        for row in rows:
            sub = subs.get(row.subscription_id)
            if sub is None:
                key = (row.subscription_id, "gone")
                groups.setdefault(
                    key,
                    Group(row.subscription_id, [], {}, set(), "subscription deleted"),
                ).rows.append(row)
                continue
            urls, broken = decrypted[row.subscription_id]
            done = ledger.settled_targets(row)
            pending = {tid: url for tid, url in urls.items() if tid not in done}
            unusable = {tid: error for tid, error in broken.items() if tid not in done}
            settle = None if urls or broken else "subscription has no targets"
            key = (row.subscription_id, tuple(sorted(pending)), tuple(sorted(unusable)), settle)
            groups.setdefault(
                key,
                Group(row.subscription_id, [], pending, set(urls) | set(broken), settle, unusable),
            ).rows.append(row)
        return list(groups.values())

    # --- sending ---------------------------------------------------------------------------
    def _send_one(self, url: str, alerts) -> SendResult:
        try:
            plugin = _plugin_for(url, self.allow_private)
        except TargetError as exc:
            return SendResult(redact_target(url), False, str(exc), permanent=True)
        rendered = render_for(plugin, alerts)
        return send_with_plugin(plugin, url, rendered.title, rendered.body, rendered.body_format)

    def attempt(self, group: Group) -> ledger.Attempt:
        """Sends one group's alert to each target it still owes it to (a worker's job)."""
        rows = sorted(group.rows, key=lambda r: (r.payload["polled_at"], r.video_id))
        alerts = [ledger.alert_of(r.payload) for r in rows]
        results: dict[str, SendResult] = {}
        for tid, error in group.broken.items():
            results[tid] = SendResult("***", False, error, permanent=True)
        for tid, url in group.targets.items():
            try:
                results[tid] = self._send_one(url, alerts)
            except Exception as exc:  # a plugin bug must not kill the worker
                log.warning("sending to %s raised %s", redact_target(url), type(exc).__name__)
                results[tid] = SendResult(redact_target(url), False, type(exc).__name__)
        for result in results.values():
            (metrics.SENT if result.ok else metrics.FAILED).inc()
        return ledger.Attempt(
            [r.id for r in rows],
            results,
            group.settle_error,
            frozenset(group.current | set(results)),
        )

    def save(self, attempts: list[ledger.Attempt]) -> list[ledger.Outcome]:
        """Writes the outcomes of finished attempts (one transaction) and counts them."""
        outcomes = ledger.save_outcomes(self.engine, attempts, self.policy)
        now = datetime.now(UTC)
        for outcome in outcomes:
            if outcome.retried:
                metrics.RETRIED.inc()
            elif outcome.status == ledger.DEAD:
                metrics.DEAD.inc()
            elif outcome.status == ledger.DELIVERED:
                polled = ledger.polled_at_of(outcome.payload)
                metrics.LATENCY.observe(max((now - polled).total_seconds(), 0.0))
        return outcomes

    def send_due(self) -> int:
        """One synchronous round: claim what is due, send it all, save. Returns rows handled."""
        rows = ledger.claim(self.engine, self.claim_limit, self.lease_s)
        if not rows:
            return 0
        with ThreadPoolExecutor(self.workers, thread_name_prefix="notifier-send") as pool:
            attempts = list(pool.map(self.attempt, self.group(rows)))
        self.save(attempts)
        return len(rows)

    def run(self, stop: threading.Event, idle_s: float = 0.2) -> None:
        """Sends continuously until ``stop``; then finishes and records what is in flight.

        Workers only send; this thread does all of the sender's database work (claims and
        outcomes, several outcomes per transaction), so workers never queue on the database
        lock and the time between a send and its outcome written stays a few milliseconds.
        """
        finished: queue.SimpleQueue[ledger.Attempt] = queue.SimpleQueue()

        def done(future: Future) -> None:
            error = future.exception()
            if error is not None:  # the rows stay leased and are retried when it expires
                log.error("delivery worker failed: %r", error)
            else:
                finished.put(future.result())
            self.wake.set()

        def save_finished() -> int:
            batch = []
            while True:
                try:
                    batch.append(finished.get_nowait())
                except queue.Empty:
                    break
            if batch:
                try:
                    self.save(batch)
                except Exception:
                    log.exception("saving delivery outcomes failed; rows retry after the lease")
            return len(batch)

        with ThreadPoolExecutor(self.workers, thread_name_prefix="notifier-send") as pool:
            futures: set[Future] = set()
            while not stop.is_set():
                self.wake.clear()
                save_finished()
                futures = {f for f in futures if not f.done()}
                inflight = len(futures)
                rows = []
                if inflight < self.workers:
                    # Claim only what the free workers start at once: a claimed row queued
                    # behind a slow target past its lease would be claimed (and sent) again,
                    # and a worker's finished send is recorded before it gets another, so a
                    # crash re-sends at most one alert per worker.
                    limit = min(self.claim_limit, self.workers - inflight)
                    try:
                        rows = ledger.claim(self.engine, limit, self.lease_s)
                        groups = self.group(rows) if rows else []
                    except Exception:
                        log.exception("claiming deliveries failed; retrying shortly")
                        rows, groups = [], []
                    for group in groups:
                        future = pool.submit(self.attempt, group)
                        futures.add(future)
                        future.add_done_callback(done)
                if not rows:
                    self.wake.wait(idle_s)
        save_finished()  # the pool has finished what was in flight
