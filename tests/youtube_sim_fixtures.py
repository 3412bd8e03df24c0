"""The YouTube simulator on a real loopback port, for any test that needs YouTube.

Usage in a test module (the fixture import needs the noqa: pytest finds it by name)::

    from youtube_sim_fixtures import SimControl, sim_video, youtube_sim_url  # noqa: F401, F811

    def test_something(youtube_sim_url):
        sim = SimControl(youtube_sim_url)
        sim.add_playlist("PLdemo", [sim_video("Tk23kQRFWcw", likes=3)])
        settings = Settings(youtube_api_url=sim.api_url, youtube_api_key="any-key", ...)

or without a fixture: ``with start_youtube_sim() as base_url: ...``.

`start_youtube_sim()` is the context manager behind the fixture: uvicorn in a daemon thread,
bound to port 0 so the OS picks a free port (no race), stopped on exit. The fixture gives each
test a fresh simulator.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from tubewatch.youtube_sim.app import create_app


@contextmanager
def start_youtube_sim(app=None) -> Iterator[str]:
    """Serves the simulator on 127.0.0.1 and yields its base URL (``http://127.0.0.1:PORT``)."""
    config = uvicorn.Config(
        app or create_app(),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="youtube-sim", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the YouTube simulator did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)


@pytest.fixture
def youtube_sim_url() -> Iterator[str]:
    """Base URL of a fresh simulator; the API lives under ``/youtube/v3``."""
    with start_youtube_sim() as url:
        yield url


def sim_video(
    video_id: str,
    title: str | None = None,
    likes: int | None = 0,
    comments: int | None = 0,
    views: int = 0,
) -> dict:
    """One entry of ``POST /_sim/playlists``."""
    return {
        "video_id": video_id,
        "title": title or f"Video {video_id}",
        "likes": likes,
        "comments": comments,
        "views": views,
    }


class SimControl:
    """The simulator's ``/_sim`` control endpoints, as plain method calls."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.api_url = f"{base_url}/youtube/v3"
        self.http = httpx.Client(base_url=base_url, timeout=10)

    def add_playlist(self, playlist_id: str, videos: list[dict]) -> None:
        self.http.post(
            "/_sim/playlists", json={"playlist_id": playlist_id, "videos": videos}
        ).raise_for_status()

    def delete_playlist(self, playlist_id: str) -> None:
        self.http.delete(f"/_sim/playlists/{playlist_id}").raise_for_status()

    def patch_video(self, video_id: str, **changes: object) -> dict:
        response = self.http.patch(f"/_sim/videos/{video_id}", json=changes)
        response.raise_for_status()
        return response.json()

    def quota(self) -> dict:
        return self.http.get("/_sim/quota").raise_for_status().json()

    def units(self) -> int:
        return self.quota()["units_used"]

    def set_quota(self, **body: object) -> dict:
        return self.http.post("/_sim/quota", json=body).raise_for_status().json()

    def fault(
        self, reason: str, endpoint: str | None = None, count: int = 1, delay_s: float = 0
    ) -> None:
        """The next ``count`` calls fail with ``reason`` (or answer late: ``delay``)."""
        body = {"reason": reason, "endpoint": endpoint, "count": count, "delay_s": delay_s}
        self.http.post("/_sim/faults", json=body).raise_for_status()

    def set_keys(self, valid_keys: list[str] | None) -> None:
        self.http.put("/_sim/keys", json={"valid_keys": valid_keys}).raise_for_status()

    def close(self) -> None:
        self.http.close()
