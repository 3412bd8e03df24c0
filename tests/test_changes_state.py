"""`DatabaseStateStore` (the embedded default's state) on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from tubewatch.changes import state as state_module
from tubewatch.changes.logic import VideoState
from tubewatch.changes.state import DatabaseStateStore
from tubewatch.db import get_engine

pytest_plugins = ["tests.api_fixtures"]

BIG = 2**40  # counts pass 2**31


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("postgres_url")


def save_twice_and_load(store: DatabaseStateStore) -> dict:
    """A first batch, then one that moves a video, adds one and re-saves one unchanged."""
    store.save(
        {0: {"a" * 11: VideoState(1, 2, BIG, 10)}, 1: {"b" * 11: VideoState(None, 0, 5, 11)}}
    )
    store.save(
        {
            0: {"a" * 11: VideoState(3, None, BIG + 1, 12), "c" * 11: VideoState(7, 7, 7, 13)},
            1: {"b" * 11: VideoState(None, 0, 5, 11)},
        }
    )
    store.save({})  # an empty batch writes nothing and fails on nothing
    return DatabaseStateStore(store.engine).load([0, 1, 2])  # as after a restart


EXPECTED = {
    0: {"a" * 11: VideoState(3, None, BIG + 1, 12), "c" * 11: VideoState(7, 7, 7, 13)},
    1: {"b" * 11: VideoState(None, 0, 5, 11)},
    2: {},
}


def test_states_are_upserted_and_read_back(any_db_url):
    assert save_twice_and_load(DatabaseStateStore(get_engine(any_db_url))) == EXPECTED


def test_another_database_gets_the_portable_merge(tmp_path, monkeypatch):
    """A database without a known upsert still works, one merge per video."""
    monkeypatch.setattr(state_module, "_UPSERT_INSERTS", {})
    store = DatabaseStateStore(get_engine(f"sqlite:///{tmp_path / 'state.db'}"))
    assert save_twice_and_load(store) == EXPECTED


def test_a_video_moving_partition_follows_its_latest_save(any_db_url):
    """A video's row belongs to the partition of its latest save."""
    store = DatabaseStateStore(get_engine(any_db_url))
    store.save({0: {"a" * 11: VideoState(1, 1, 1, 1)}})
    store.save({3: {"a" * 11: VideoState(2, 2, 2, 2)}})
    assert store.load([0, 3]) == {0: {}, 3: {"a" * 11: VideoState(2, 2, 2, 2)}}
