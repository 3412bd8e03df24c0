"""End to end: the real CLI processes, real HTTP, the simulator and a local receiver.

1. On the real broker, api, poller, changes and notifier each run as their own process.
2. `tubewatch run` alone, on the embedded default (no broker).

In both: mint a key with `tubewatch keys create`, POST /watches with a json:// target, move
likes on the simulator, and the alert arrives at the receiver naming previous and current
counts.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from receivers import HttpReceiver

from tubewatch.youtube_sim.control import SimControl, sim_video
from tubewatch.youtube_sim.server import serve_in_thread

TUBEWATCH = [sys.executable, "-m", "tubewatch.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique_video_id() -> str:
    return ("e2e" + uuid.uuid4().hex)[:11]


def unique_playlist_id() -> str:
    return "PL" + uuid.uuid4().hex + "00"


@contextmanager
def processes(env: dict[str, str], logs: Path, *commands: list[str]) -> Iterator[dict]:
    """Starts each command as a process with its output in logs/<n>.log; stops them all with
    SIGTERM and fills the yielded dict with their exit codes (a clean shutdown is 0)."""
    started = []
    exit_codes: dict[str, int] = {}
    try:
        for i, command in enumerate(commands):
            log_file = open(logs / f"{i}-{command[0]}.log", "wb")  # noqa: SIM115
            started.append(
                (
                    subprocess.Popen(
                        [*TUBEWATCH, *command], env=env, stdout=log_file, stderr=subprocess.STDOUT
                    ),
                    log_file,
                )
            )
        yield exit_codes
    finally:
        for proc, _ in started:
            proc.terminate()
        for proc, log_file in started:
            try:
                exit_codes[proc.args[len(TUBEWATCH)]] = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                exit_codes[proc.args[len(TUBEWATCH)]] = proc.wait()
            log_file.close()


def dump_logs(logs: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(logs.glob("*.log"))
    )


def mint_key(env: dict[str, str]) -> str:
    result = subprocess.run(
        [*TUBEWATCH, "keys", "create", "--name", "e2e-owner"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip().splitlines()[-1]


def wait_until(predicate, timeout_s: float, what: str, logs: Path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}\n{dump_logs(logs)}")


def api_up(api: str) -> bool:
    try:
        return httpx.get(f"{api}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def scenario(
    api: str, env: dict[str, str], sim: SimControl, receiver: HttpReceiver, logs: Path
) -> None:
    """The user's story, the same on both deployments."""
    video_a, video_b = unique_video_id(), unique_video_id()
    playlist = unique_playlist_id()
    sim.add_playlist(
        playlist,
        [
            sim_video(video_a, "Alpha", likes=100, comments=7, views=1000),
            sim_video(video_b, "Beta", likes=50, comments=2, views=500),
        ],
    )
    wait_until(lambda: api_up(api), 60, "the API", logs)
    key = mint_key(env)
    auth = {"Authorization": f"Bearer {key}"}

    created = httpx.post(
        f"{api}/watches",
        headers=auth,
        timeout=10,
        json={
            "playlist_id": playlist,
            "label": "e2e",
            "notify": [receiver.url("json", "/e2e")],
            "metrics": ["likes", "comments"],
        },
    )
    assert created.status_code == 201, created.text
    watch = created.json()
    assert "/e2e" not in str(watch), "targets must be redacted"

    def first_snapshot_seen():
        videos = httpx.get(f"{api}/watches/{watch['id']}/videos", headers=auth, timeout=5)
        return (
            videos.status_code == 200
            and {v["video_id"]: v for v in videos.json()}.get(video_a, {}).get("likes") == 100
        )

    wait_until(first_snapshot_seen, 60, "the first snapshot of the playlist", logs)
    time.sleep(1.5)  # let the change engine see the first snapshot before the count moves
    sim.patch_video(video_a, likes=105)

    alerts = wait_until(lambda: receiver.to("/e2e"), 60, "the alert", logs)
    message = alerts[0].message
    assert "Alpha" in message or "Alpha" in alerts[0].title
    assert "100" in message and "105" in message and "+5" in message
    assert f"https://youtu.be/{video_a}" in message
    time.sleep(2)
    assert len(receiver.to("/e2e")) == 1, "one change, one alert"

    deliveries = httpx.get(f"{api}/deliveries", headers=auth, timeout=5).json()
    assert [d["status"] for d in deliveries] == ["delivered"]


@pytest.fixture
def base_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUBEWATCH_")}
    env.update(
        {
            "TUBEWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'e2e.db'}",
            "TUBEWATCH_YOUTUBE_API_KEY": "e2e-key",
            "TUBEWATCH_POLL_INTERVAL_S": "1",
            "TUBEWATCH_ALLOW_PRIVATE_TARGETS": "true",
            "TUBEWATCH_SECRET_KEY": "e2e-secret",
            "TUBEWATCH_DATA_DIR": str(tmp_path / "data"),
            "TUBEWATCH_DIGEST_WINDOW_S": "0.5",
        }
    )
    return env


def test_four_services_as_processes_on_kafka(kafka_bootstrap, base_env, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    api_port = free_port()
    with serve_in_thread() as sim_url, HttpReceiver() as receiver:
        sim = SimControl(sim_url)
        env = {
            **base_env,
            "TUBEWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "TUBEWATCH_YOUTUBE_API_URL": sim.api_url,
        }
        with processes(
            env, logs, ["api", "--port", str(api_port)], ["poller"], ["changes"], ["notifier"]
        ):
            scenario(f"http://127.0.0.1:{api_port}", env, sim, receiver, logs)
        assert "e2e-key" not in dump_logs(logs), "the API key must never be logged"


def test_tubewatch_run_on_the_embedded_default(base_env, tmp_path):
    run_in_one_process(base_env, tmp_path)


def test_tubewatch_run_on_kafka(kafka_bootstrap, base_env, tmp_path):
    run_in_one_process({**base_env, "TUBEWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap}, tmp_path)


def run_in_one_process(base_env: dict[str, str], tmp_path: Path) -> None:
    """`tubewatch run`: the user's story, then SIGTERM saves what is in flight and exits 0."""
    logs = tmp_path / "logs"
    logs.mkdir()
    port = free_port()
    with serve_in_thread() as sim_url, HttpReceiver() as receiver:
        sim = SimControl(sim_url)
        env = {**base_env, "TUBEWATCH_YOUTUBE_API_URL": sim.api_url}
        with processes(env, logs, ["run", "--port", str(port)]) as exit_codes:
            scenario(f"http://127.0.0.1:{port}", env, sim, receiver, logs)
        assert exit_codes == {"run": 0}, dump_logs(logs)
        assert "tubewatch stopped" in dump_logs(logs)
        assert "e2e-key" not in dump_logs(logs), "the API key must never be logged"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUBEWATCH_")}
    env.update(extra)
    return env


def demo_until_alert(cwd: Path, env: dict[str, str], port: int | None = None) -> tuple[str, int]:
    """Runs `tubewatch demo` until its first alert is printed, then Ctrl-C: (output, rc)."""
    proc = subprocess.Popen(
        [*TUBEWATCH, "demo", "--port", str(port or free_port())],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "https://youtu.be/" in line:
                break
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate()
    return "".join(lines) + rest, proc.returncode


def test_demo_streams_alerts_to_the_terminal(tmp_path):
    """The README's first command: alerts appear within seconds, with no key and no network;
    Ctrl-C stops it and its throwaway folder (database, secret key) goes with it."""
    output, returncode = demo_until_alert(tmp_path, clean_env())
    assert "tubewatch demo is running" in output
    assert "🔔" in output and "→" in output and "https://youtu.be/" in output, output[-3000:]
    assert returncode == 0, output[-3000:]
    assert "Traceback" not in output
    data_dir = re.search(r"data in (\S+), removed when it stops", output)
    assert data_dir, output[-3000:]
    assert not Path(data_dir.group(1)).exists(), "the demo's temporary folder is left behind"
    assert list(tmp_path.iterdir()) == [], "the demo writes nothing into the current folder"


def test_demo_runs_again_on_the_users_database(tmp_path):
    """With TUBEWATCH_DATABASE_URL, a second demo run reads the first run's targets (same
    secret key) and reuses its watch: no undecryptable targets, no second watch."""
    database = tmp_path / "demo.db"
    env = clean_env(TUBEWATCH_DATABASE_URL=f"sqlite:///{database}")
    for run in (1, 2):
        output, returncode = demo_until_alert(tmp_path, env)
        assert returncode == 0 and "Traceback" not in output, output[-3000:]
        assert "(watch 1)" in output, f"run {run}: {output[-3000:]}"
        assert "https://youtu.be/" in output, output[-3000:]
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM watch").fetchone() == (1,)
        statuses = db.execute("SELECT status, error FROM delivery").fetchall()
    assert statuses and all(status == "delivered" for status, _ in statuses), statuses


@pytest.mark.parametrize("command", ["demo", "run"])
def test_a_busy_port_is_a_clear_error(command, tmp_path):
    """The API's port taken (another tubewatch, anything on 8000): one line saying so and how
    to pick another, exit 2, no traceback, and nothing created in the current folder."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*TUBEWATCH, command, "--port", str(port)],
            env=clean_env(),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port" in result.stderr
    assert list(tmp_path.iterdir()) == [], "nothing is created before the port is checked"


def _waiting_for_flock(pid: int) -> bool:
    """True once ``pid`` is blocked on a flock (a waiter's line in /proc/locks has "->")."""
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()  # "7: -> FLOCK ADVISORY WRITE <pid> <dev:inode> 0 EOF"
        if "->" in fields and "FLOCK" in fields and str(pid) in fields:
            return True
    return False


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks")
@pytest.mark.parametrize(
    ("signum", "returncode", "said"),
    [
        (signal.SIGINT, 130, "interrupted before it started"),
        # a service manager's stop; it used to kill the process where it stood
        (signal.SIGTERM, 143, "terminated before it started"),
    ],
)
def test_a_stop_while_tubewatch_run_starts_is_clean(tmp_path, signum, returncode, said):
    """Ctrl-C or SIGTERM before the API serves (here: waiting for another process's
    migration lock) stops at once with a line saying so, not a traceback."""
    database = tmp_path / "tubewatch.db"
    with open(f"{database}.migrate-lock", "ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process migrating
        proc = subprocess.Popen(
            [*TUBEWATCH, "run", "--port", str(free_port())],
            env=clean_env(TUBEWATCH_DATABASE_URL=f"sqlite:///{database}"),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not _waiting_for_flock(proc.pid):
                assert proc.poll() is None, proc.communicate()[0]
                assert time.monotonic() < deadline, "tubewatch run never waited for the lock"
                time.sleep(0.1)
            proc.send_signal(signum)
            output, _ = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == returncode, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert said in output


def test_readme_demo_command_installs_into_a_venv():
    """The README's first command must work on a fresh Debian, whose python3 refuses
    `pip install` outside a virtual environment (PEP 668, "externally-managed-environment")."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"## Two commands.*?```sh\n(.*?)```", readme, re.S)
    assert block, "README.md lost its 'Two commands' section"
    demo = next(line for line in block.group(1).splitlines() if "tubewatch demo" in line)
    steps = [step.strip() for step in demo.split("&&")]
    assert steps[0].startswith("python3 -m venv "), demo
    venv = steps[0].split()[-1]
    assert all(
        step.startswith(f"{venv}/bin/")
        for step in steps[1:]
        if "pip" in step or "tubewatch" in step
    ), f"pip and tubewatch must run from the venv {venv}: {demo}"
