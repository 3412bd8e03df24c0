"""`Stack`: api + poller + change engine + notifier in one process.

Each worker runs `run(stop)` in a thread of its own; the API is served by uvicorn in the
calling thread, which also receives SIGINT/SIGTERM. Shutdown order: the API stops taking
requests, then `stop` is set and every worker finishes what it has in flight (the poller its
cycle, the change engine its batch and offsets, the notifier its sends and records) before
the process exits.

A worker whose loop fails is rebuilt and restarted after a backoff, as a container's restart
policy would restart its process: the new instance resumes from what was committed (consumer
offsets, saved state, delivery records), so nothing committed is redone and nothing
uncommitted is lost.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import uvicorn

from tubewatch.api.main import create_app
from tubewatch.backoff import Backoff
from tubewatch.bus import open_database_and_bus
from tubewatch.changes.cli import build_engine
from tubewatch.listen import check_can_listen
from tubewatch.notifier.service import Notifier
from tubewatch.poller.service import Poller
from tubewatch.settings import Settings

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 30


class _Server(uvicorn.Server):
    """uvicorn without its own signal capture: uvicorn re-raises a captured SIGTERM after it
    stops, which would kill the process before the workers save what is in flight. The stack
    installs its handlers instead (`Stack.serve`)."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


@dataclass
class Worker:
    name: str
    build: Callable[[], object]  # a fresh service with run(stop: threading.Event)
    thread: threading.Thread | None = None
    restarts: int = 0
    last_error: str | None = field(default=None)


class Stack:
    """Builds every service on one database and one bus (Kafka or the embedded default)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.engine, self.bus = open_database_and_bus(settings)
        self.stop = threading.Event()
        # Waits before restarting a failed worker: 0.5-1 s, then doubling up to 30 s.
        self.restart_backoff = Backoff(base_s=1, max_s=30, sleep=self.stop.wait)
        # The schema is current (migrated above): the app must not migrate again at start,
        # while the workers already hold the database open.
        self.app = create_app(settings, self.engine, migrate=False)
        self.workers = [
            Worker("poller", lambda: Poller(settings, self.engine, self.bus)),
            Worker("changes", lambda: build_engine(settings, self.bus)),
            Worker("notifier", lambda: Notifier(settings, self.engine, self.bus)),
        ]
        self._server: uvicorn.Server | None = None

    def start_workers(self) -> None:
        for worker in self.workers:
            worker.thread = threading.Thread(
                target=self._run_worker, args=(worker,), name=f"tubewatch-{worker.name}"
            )
            worker.thread.start()
        log.info("running poller, changes and notifier on %s", self.bus.describe())

    def _run_worker(self, worker: Worker) -> None:
        """Runs the worker until `stop`; a failure rebuilds and restarts it after a backoff.

        The backoff grows with consecutive failures and starts over once an instance has run
        longer than the longest wait, so a worker that failed once last week restarts fast.
        """
        backoff = self.restart_backoff
        failures_in_a_row = 0
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                worker.build().run(self.stop)
                return
            except Exception as exc:  # reported, then the worker comes back
                if time.monotonic() - started > backoff.max_s:
                    failures_in_a_row = 0
                delay = backoff.delay(failures_in_a_row)
                failures_in_a_row += 1
                worker.restarts += 1
                worker.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("%s failed; restarting it in %.1fs", worker.name, delay)
                backoff.sleep(delay)  # the stop event's wait: a stop cuts it short

    def request_stop(self, signum: int | None = None, _frame=None) -> None:
        """Ask everything to stop (signal handler too); a second signal makes uvicorn hurry."""
        if signum is not None:
            log.info("received %s, stopping", signal.Signals(signum).name)
        if self._server is not None and self._server.should_exit:
            self._server.force_exit = True
        self.stop.set()
        if self._server is not None:
            self._server.should_exit = True

    def serve(self, host: str, port: int, log_level: str = "info") -> int:
        """Serve the API until a signal, then stop everything; 0 once all saved their work.

        Raises `CannotListen`, before any worker starts, when the address cannot be bound.
        """
        check_can_listen(host, port)
        config = uvicorn.Config(
            self.app, host=host, port=port, log_level=log_level, access_log=False
        )
        self._server = _Server(config)
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, self.request_stop)
        self.start_workers()
        try:
            self._server.run()
        finally:
            self.shutdown()
        stuck = [w.name for w in self.workers if w.thread is not None and w.thread.is_alive()]
        return 1 if stuck else 0

    def wait_until_serving(self, timeout_s: float = 30) -> None:
        """Blocks until the API accepts connections (for helpers that call it)."""
        deadline = time.monotonic() + timeout_s
        while self._server is None or not self._server.started:
            if time.monotonic() > deadline or self.stop.is_set():
                raise RuntimeError("the API did not start")
            time.sleep(0.05)

    def shutdown(self) -> None:
        """Stop the workers and wait for them to save what is in flight (each closes itself)."""
        self.stop.set()
        for worker in self.workers:
            if worker.thread is not None:
                worker.thread.join(JOIN_TIMEOUT_S)
                if worker.thread.is_alive():
                    log.error("%s did not stop within %ss", worker.name, JOIN_TIMEOUT_S)
        log.info("tubewatch stopped")
