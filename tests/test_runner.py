"""The single-process stack supervises its workers: a failed worker is rebuilt, not fatal."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tubewatch.backoff import Backoff
from tubewatch.runner.stack import Stack, Worker
from tubewatch.settings import Settings


class FlakyService:
    """Fails on its first `failures` runs (counted across instances), then runs until stop."""

    def __init__(self, attempts: list[int], failures: int):
        self.attempts = attempts
        self.failures = failures

    def run(self, stop: threading.Event) -> None:
        self.attempts.append(len(self.attempts) + 1)
        if len(self.attempts) <= self.failures:
            raise RuntimeError(f"broken on attempt {len(self.attempts)}")
        stop.wait()


def wait_for(condition, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture
def stack(tmp_path) -> Stack:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'run.db'}", kafka_bootstrap=None, secret_key="k"
    )
    stack = Stack(settings)
    stack.restart_backoff = Backoff(base_s=0.01, max_s=0.05, sleep=stack.stop.wait)
    return stack


def test_a_failing_worker_is_rebuilt_and_the_others_keep_running(stack):
    flaky_attempts: list[int] = []
    steady_attempts: list[int] = []
    stack.workers = [
        Worker("flaky", lambda: FlakyService(flaky_attempts, failures=3)),
        Worker("steady", lambda: FlakyService(steady_attempts, failures=0)),
    ]
    stack.start_workers()
    try:
        wait_for(lambda: len(flaky_attempts) == 4)
        flaky, steady = stack.workers
        assert flaky.restarts == 3
        assert flaky.last_error == "RuntimeError: broken on attempt 3"
        assert flaky.thread.is_alive(), "the fourth instance runs until stop"
        assert steady.restarts == 0 and steady_attempts == [1]
    finally:
        stack.shutdown()
    assert not any(worker.thread.is_alive() for worker in stack.workers)
    assert len(flaky_attempts) == 4, "no restart after stop"


def test_stop_during_the_backoff_ends_the_worker_without_another_attempt(stack):
    stack.restart_backoff = Backoff(base_s=120, max_s=120, sleep=stack.stop.wait)
    attempts: list[int] = []
    stack.workers = [Worker("broken", lambda: FlakyService(attempts, failures=99))]
    stack.start_workers()
    wait_for(lambda: stack.workers[0].restarts == 1)
    started = time.monotonic()
    stack.shutdown()
    assert time.monotonic() - started < 5, "stop interrupts the backoff wait"
    assert attempts == [1]
    assert not stack.workers[0].thread.is_alive()


def test_the_real_workers_run_on_the_embedded_default_and_stop_cleanly(stack):
    stack.start_workers()
    time.sleep(1)
    assert all(worker.thread.is_alive() for worker in stack.workers)
    assert all(worker.restarts == 0 for worker in stack.workers), [
        worker.last_error for worker in stack.workers
    ]
    stack.shutdown()
    assert not any(worker.thread.is_alive() for worker in stack.workers)


def test_restart_waits_grow_with_failures_in_a_row(stack):
    waits: list[float] = []
    stack.restart_backoff = Backoff(base_s=1, max_s=30, sleep=waits.append)
    attempts: list[int] = []
    stack.workers = [Worker("flaky", lambda: FlakyService(attempts, failures=4))]
    stack.start_workers()
    try:
        wait_for(lambda: len(attempts) == 5)
    finally:
        stack.shutdown()
    # Equal jitter: each wait in the upper half of 1, 2, 4, 8 s.
    assert [nominal / 2 <= w <= nominal for w, nominal in zip(waits, (1, 2, 4, 8))] == [True] * 4


def test_the_demo_resumes_its_paused_watch_instead_of_a_silent_demo(tmp_path):
    from tests.api_fixtures import LiveServer, make_settings, mint
    from tubewatch.db import get_engine
    from tubewatch.runner.console_channel import register_console_channel
    from tubewatch.runner.demo import create_demo_watch

    register_console_channel()
    settings = make_settings(f"sqlite:///{tmp_path / 'demo.db'}", tmp_path)
    with LiveServer(settings) as server:
        key = mint(get_engine(settings.database_url), "demo")
        headers = {"Authorization": f"Bearer {key}"}
        first = create_demo_watch(server.url, key)
        sub_id = first["subscriptions"][0]["id"]
        for path in (f"/watches/{first['id']}", f"/subscriptions/{sub_id}"):
            paused = httpx.patch(server.url + path, headers=headers, json={"paused": True})
            assert paused.status_code == 200, paused.text

        again = create_demo_watch(server.url, key)  # the next demo run, same database
        assert again["id"] == first["id"]
        stored = httpx.get(f"{server.url}/watches/{first['id']}", headers=headers).json()
        assert stored["paused"] is False
        assert [sub["paused"] for sub in stored["subscriptions"]] == [False]
        assert len(httpx.get(f"{server.url}/watches", headers=headers).json()) == 1
