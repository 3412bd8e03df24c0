"""`tubewatch demo`: the whole pipeline on this machine, alerts printed in the terminal.

It starts the YouTube simulator, seeds a demo playlist, runs the stack (`tubewatch run`)
against it, mints an API key, creates a watch with a console channel through the REST API,
and then makes likes and comments move on the simulator every few seconds. No API key, no
network: everything listens on 127.0.0.1. Without ``TUBEWATCH_DATABASE_URL`` the demo keeps
its database in a fresh temporary folder.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import tempfile
import threading
from pathlib import Path

import httpx

from tubewatch.api.keys import mint_key
from tubewatch.db import session_scope
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


def demo_settings(sim_api_url: str, data_dir: Path) -> Settings:
    """The user's settings, with what the demo needs on top (environment still wins for the
    database and the broker)."""
    overrides: dict[str, object] = {
        "youtube_api_url": sim_api_url,
        "youtube_api_key": "demo-key",
        "poll_interval_s": float(os.environ.get("TUBEWATCH_POLL_INTERVAL_S", "3")),
        "playlist_refresh_s": 30,
        "allow_private_targets": True,
        "digest_window_s": 1,
        "data_dir": data_dir,
    }
    if "TUBEWATCH_DATABASE_URL" not in os.environ:
        overrides["database_url"] = f"sqlite:///{data_dir / 'tubewatch-demo.db'}"
    return Settings(**overrides)


def seed_simulator(sim: SimControl) -> dict[str, dict]:
    """Adds the demo playlist; returns each video's starting counts."""
    videos = [
        sim_video(
            video_id,
            title,
            likes=random.randint(100, 5000),
            comments=random.randint(5, 300),
            views=random.randint(10_000, 900_000),
        )
        for video_id, title in DEMO_VIDEOS
    ]
    sim.add_playlist(DEMO_PLAYLIST, videos)
    return {v["video_id"]: v for v in videos}


def create_demo_watch(api_url: str, key: str) -> dict:
    response = httpx.post(
        f"{api_url}/watches",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "playlist_id": DEMO_PLAYLIST,
            "label": "tubewatch demo",
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
            except httpx.HTTPError:
                log.warning("the simulator did not take the demo's change", exc_info=True)


def main(args: argparse.Namespace) -> int:
    if args.log_level.upper() == "INFO":  # the default: let the alerts stand out
        logging.getLogger().setLevel(logging.WARNING)
    register_console_channel()
    data_dir = Path(tempfile.mkdtemp(prefix="tubewatch-demo-"))
    with serve_in_thread() as sim_url:
        sim = SimControl(sim_url)
        counts = seed_simulator(sim)
        stack = Stack(demo_settings(sim.api_url, data_dir))
        with session_scope(stack.engine) as session:
            key = mint_key(session, owner="demo")
        api_url = f"http://{args.host}:{args.port}"

        def after_start() -> None:
            stack.wait_until_serving()
            watch = create_demo_watch(api_url, key)
            print(
                f"\ntubewatch demo is running (data in {data_dir}).\n"
                f"  API      {api_url}/docs   key: {key}\n"
                f"  watching playlist {DEMO_PLAYLIST} (watch {watch['id']}) with a console"
                " channel\n  likes and comments move every few seconds: alerts appear below."
                " Ctrl-C stops.\n",
                flush=True,
            )
            Activity(sim, counts).run(stack.stop)

        threading.Thread(target=after_start, name="demo-activity", daemon=True).start()
        return stack.serve(args.host, args.port, log_level="warning")
