"""The YouTube simulator on a real loopback port, for any test that needs YouTube.

Usage in a test module (the fixture import needs the noqa: pytest finds it by name)::

    from youtube_sim_fixtures import SimControl, sim_video, youtube_sim_url  # noqa: F401, F811

    def test_something(youtube_sim_url):
        sim = SimControl(youtube_sim_url)
        sim.add_playlist("PLdemo", [sim_video("Tk23kQRFWcw", likes=3)])
        settings = Settings(youtube_api_url=sim.api_url, youtube_api_key="any-key", ...)

or without a fixture: ``with start_youtube_sim() as base_url: ...``.

`start_youtube_sim()` is the context manager behind the fixture
(`tubewatch.youtube_sim.server.serve_in_thread`): uvicorn in a daemon thread, bound to port 0
so the OS picks a free port (no race), stopped on exit. The fixture gives each
test a fresh simulator.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tubewatch.youtube_sim.control import SimControl, sim_video  # noqa: F401 (re-exported)
from tubewatch.youtube_sim.server import serve_in_thread


def start_youtube_sim(app=None):
    """Serves the simulator on 127.0.0.1 and yields its base URL (``http://127.0.0.1:PORT``)."""
    return serve_in_thread(app)


@pytest.fixture
def youtube_sim_url() -> Iterator[str]:
    """Base URL of a fresh simulator; the API lives under ``/youtube/v3``."""
    with start_youtube_sim() as url:
        yield url
