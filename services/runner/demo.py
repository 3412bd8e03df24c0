"""`tubewatch demo`: the whole pipeline on this machine, alerts printed in the terminal.

It starts the YouTube simulator, seeds a demo playlist, runs the stack (`tubewatch run`)
against it, mints an API key, creates a watch with a console channel through the REST API,
and then makes likes and comments move on the simulator every few seconds. No API key, no
network: everything listens on 127.0.0.1. Without ``TUBEWATCH_DATABASE_URL`` the demo keeps
its database in a fresh temporary folder, removed when it stops; with it, a second run carries
on with the first one's watch and counts.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import sys
import tempfile
import threading
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from tubewatch.api.keys import mint_key
from tubewatch.db import session_scope
from tubewatch.listen import CannotListen, check_can_listen
from tubewatch.models import Video
from tubewatch.runner.console_channel import CONSOLE_TARGET, register_console_channel
from tubewatch.runner.stack import Stack
from tubewatch.settings import Settings
from tubewatch.youtube_sim.control import SimControl, sim_video
from tubewatch.youtube_sim.server import serve_in_thread

log = logging.getLogger(__name__)

DEMO_PLAYLIST = "PLtubewatchDemoPlaylist0000000001"
DEMO_VIDEOS = [
    ("dQw4w9WgXcQ", "Never Gonna Give You Up (demo)"),
    ("Tk23kQRFWcw", "How tubewatch works"),
    ("9bZkp7q19f0", "A very popular dance"),
    ("kJQP7kiw5Fk", "A summer hit"),
    ("OPf0YbXqDm0", "Funk you up"),
]
ACTIVITY_EVERY_S = 4.0
DEMO_LABEL = "tubewatch demo"


def demo_settings(sim_api_url: str, data_dir: Path | None) -> Settings:
    """The user's settings, with what the demo needs on top (environment still wins for the
    database and the broker).

    ``data_dir`` is the demo's own throwaway folder, which then also holds its database; None
    when the database is the user's (``TUBEWATCH_DATABASE_URL``): their data folder then keeps
    the secret key that encrypted that database's targets, so a second run still reads them.
    """
    overrides: dict[str, object] = {
        "youtube_api_url": sim_api_url,
        "youtube_api_key": "demo-key",
        "playlist_refresh_s": 30,
        "allow_private_targets": True,
        "digest_window_s": 1,
    }
    if "TUBEWATCH_POLL_INTERVAL_S" not in os.environ:  # else the setting, validated, wins
        overrides["poll_interval_s"] = 3
    if data_dir is not None:
        overrides["data_dir"] = data_dir
        if "TUBEWATCH_DATABASE_URL" not in os.environ:
            overrides["database_url"] = f"sqlite:///{data_dir / 'tubewatch-demo.db'}"
    return Settings(**overrides)


def stored_counts(engine) -> dict[str, Video]:
    """The latest snapshot of each demo video a previous run left in the database."""
    with session_scope(engine) as session:
        rows = session.exec(select(Video).where(col(Video.video_id).in_(dict(DEMO_VIDEOS))))
        return {row.video_id: row for row in rows}


def seed_simulator(sim: SimControl, stored: dict[str, Video] | None = None) -> dict[str, dict]:
    """Adds the demo playlist; returns each video's starting counts.

    Counts a previous run left in the database (``stored``) carry on where they stopped, so
    a second run does not report a jump to fresh random counts as a change.
    """
    stored = stored or {}
    videos = []
    for video_id, title in DEMO_VIDEOS:
        last = stored.get(video_id)
        videos.append(
            sim_video(
                video_id,
                title,
                likes=last.likes if last and last.likes is not None else random.randint(100, 5000),
                comments=(
                    last.comments if last and last.comments is not None else random.randint(5, 300)
                ),
                views=(
                    last.views
                    if last and last.views is not None
                    else random.randint(10_000, 900_000)
                ),
            )
        )
    sim.add_playlist(DEMO_PLAYLIST, videos)
    return {v["video_id"]: v for v in videos}


def create_demo_watch(api_url: str, key: str) -> dict:
    """The demo's watch, through the REST API. An earlier run's (same database) is reused,
    resumed if it or its subscriptions were paused: the demo is there to show alerts."""
    headers = {"Authorization": f"Bearer {key}"}
    existing = httpx.get(f"{api_url}/watches", headers=headers, timeout=10)
    existing.raise_for_status()
    for watch in existing.json():
        if watch.get("playlist_id") == DEMO_PLAYLIST and watch.get("label") == DEMO_LABEL:
            resume = {"paused": False}
            for sub in watch["subscriptions"]:
                if sub["paused"]:
                    url = f"{api_url}/subscriptions/{sub['id']}"
                    httpx.patch(url, headers=headers, json=resume, timeout=10).raise_for_status()
            if watch["paused"] or any(sub["paused"] for sub in watch["subscriptions"]):
                response = httpx.patch(
                    f"{api_url}/watches/{watch['id']}", headers=headers, json=resume, timeout=10
                )
                response.raise_for_status()
                return response.json()
            return watch
    response = httpx.post(
        f"{api_url}/watches",
        headers=headers,
        json={
            "playlist_id": DEMO_PLAYLIST,
            "label": DEMO_LABEL,
            "notify": [CONSOLE_TARGET],
            "metrics": ["likes", "comments", "views"],
            "min_delta": {"views": 1000},
        },
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


class Activity:
    """Moves likes, comments and views of the demo videos on the simulator."""

    def __init__(self, sim: SimControl, counts: dict[str, dict], every_s: float = ACTIVITY_EVERY_S):
        self.sim = sim
        self.every_s = every_s
        self.counts = counts

    def step(self) -> None:
        video_id = random.choice(list(self.counts))
        counts = self.counts[video_id]
        counts["likes"] += random.randint(1, 25)
        if random.random() < 0.5:
            counts["comments"] += random.randint(1, 3)
        counts["views"] += random.randint(50, 3000)
        self.sim.patch_video(
            video_id, likes=counts["likes"], comments=counts["comments"], views=counts["views"]
        )

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.every_s):
            try:
                self.step()
            except httpx.HTTPError as exc:
                log.warning("the simulator did not take the demo's change: %s", exc)


def main(args: argparse.Namespace) -> int:
    if args.log_level.upper() == "INFO":  # the default: let the alerts stand out
        logging.getLogger().setLevel(logging.WARNING)
    try:
        return _demo(args)
    except CannotListen as exc:
        print(f"tubewatch demo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before the stack took over the signals
        print("tubewatch demo: interrupted before it started", file=sys.stderr)
        return 130


def _demo(args: argparse.Namespace) -> int:
    register_console_channel()
    api_url = f"http://{args.host}:{args.port}"
    check_can_listen(args.host, args.port)  # before the simulator and the stack start
    with contextlib.ExitStack() as cleanup:
        own_data = "TUBEWATCH_DATABASE_URL" not in os.environ
        data_dir = None
        if own_data:  # a throwaway folder, removed when the demo stops
            data_dir = Path(
                cleanup.enter_context(
                    tempfile.TemporaryDirectory(
                        prefix="tubewatch-demo-", ignore_cleanup_errors=True
                    )
                )
            )
        sim = SimControl(cleanup.enter_context(serve_in_thread()))
        stack = Stack(demo_settings(sim.api_url, data_dir))
        counts = seed_simulator(sim, stored_counts(stack.engine))
        with session_scope(stack.engine) as session:
            key = mint_key(session, owner="demo")
        where = (
            f"data in {data_dir}, removed when it stops"
            if own_data
            else f"database {make_url(stack.settings.database_url).render_as_string()}"
        )

        def after_start() -> None:
            try:
                stack.wait_until_serving()
                watch = create_demo_watch(api_url, key)
            except (RuntimeError, httpx.HTTPError) as exc:
                if not stack.stop.is_set():  # the stack stopping says why itself
                    print(f"tubewatch demo: could not set up the demo: {exc}", file=sys.stderr)
                    stack.request_stop()
                return
            print(
                f"\ntubewatch demo is running ({where}).\n"
                f"  API      {api_url}/docs   key: {key}\n"
                f"  watching playlist {DEMO_PLAYLIST} (watch {watch['id']}) with a console"
                " channel\n  likes and comments move every few seconds: alerts appear below."
                " Ctrl-C stops.\n",
                flush=True,
            )
            Activity(sim, counts).run(stack.stop)

        threading.Thread(target=after_start, name="demo-activity", daemon=True).start()
        return stack.serve(args.host, args.port, log_level="warning")
