"""Alembic migrations: the head matches `tubewatch/models.py`, and upgrades keep data.

If `test_head_matches_the_models` fails, a model changed without a revision: generate one
(see services/api/migrate.py) so existing databases upgrade.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text
from sqlmodel import Session, SQLModel, select

from tests.api_fixtures import auth, make_settings, mint
from tubewatch.api.main import create_app
from tubewatch.api.migrate import current_revision, head_revision, upgrade_to_head
from tubewatch.db import all_tables, get_engine, init_db
from tubewatch.models import ApiKey, Delivery, QuotaDay, Subscription, Video, Watch, WatchVideo

pytest_plugins = ["tests.api_fixtures"]


def _diff(engine) -> list:
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), all_tables())


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrations.db'}"
    return request.getfixturevalue("postgres_url")


def test_head_matches_the_models(any_db_url):
    engine = get_engine(any_db_url)
    upgrade_to_head(engine)
    assert current_revision(engine) == head_revision()
    diff = _diff(engine)
    assert diff == [], (
        "tubewatch/models.py and the migrations disagree; add a revision under "
        f"services/api/migrations/versions (autogenerate): {diff}"
    )


def test_upgrade_is_idempotent(any_db_url):
    engine = get_engine(any_db_url)
    init_db(engine)
    init_db(engine)
    assert current_revision(engine) == head_revision()


ROWS = {
    "apikey": "INSERT INTO apikey (id, owner, key_hash, prefix, created_at, revoked) "
    "VALUES (1, 'alice', 'h1', 'tw_abc', :now, false)",
    "watch": "INSERT INTO watch (id, owner, kind, playlist_id, video_id, label, paused, status, "
    "error, created_at, updated_at) VALUES (1, 'alice', 'playlist', 'PLabc', NULL, 'old', "
    "false, 'active', NULL, :now, :now)",
    "subscription": "INSERT INTO subscription (id, owner, watch_id, targets, metrics, min_delta, "
    "paused, created_at) VALUES (1, 'alice', 1, '[\"enc\"]', '[\"likes\"]', '{\"likes\": 2}', "
    "false, :now)",
    "watchvideo": "INSERT INTO watchvideo (watch_id, video_id, position) "
    "VALUES (1, 'Tk23kQRFWcw', 0)",
    "video": "INSERT INTO video (video_id, title, likes, comments, views, status, polled_at) "
    "VALUES ('Tk23kQRFWcw', 'T', 1, 2, 3, 'ok', :now)",
    "quotaday": "INSERT INTO quotaday (day, units_used, updated_at) VALUES ('2026-11-28', 7, :now)",
    "delivery": "INSERT INTO delivery (id, owner, subscription_id, event_id, video_id, status, "
    "attempts, payload, created_at, updated_at) VALUES (1, 'alice', 1, 'e1', 'Tk23kQRFWcw', "
    "'delivered', 1, '{}', :now, :now)",
}


def test_upgrade_from_the_first_revision_keeps_every_row(any_db_url):
    """A database at revision 0001 with a row in every table upgrades to head intact.

    What it proves: the revisions after 0001 (today 0002, a column added to `apikey` through
    SQLite's batch mode) neither drop nor alter existing rows, on SQLite and PostgreSQL. It
    says nothing about revisions not yet written; each new one runs through this test too.
    """
    engine = get_engine(any_db_url)
    upgrade_to_head(engine, revision="0001")
    assert "last_used_at" not in {c["name"] for c in inspect(engine).get_columns("apikey")}
    now = datetime(2026, 11, 28, 12, 0, 0)
    with engine.begin() as connection:
        for statement in ROWS.values():
            connection.execute(text(statement), {"now": now})
    upgrade_to_head(engine)
    assert current_revision(engine) == head_revision()
    with Session(engine) as session:
        key = session.exec(select(ApiKey)).one()
        assert (key.owner, key.key_hash, key.last_used_at) == ("alice", "h1", None)
        watch = session.exec(select(Watch)).one()
        assert (watch.playlist_id, watch.label, watch.paused) == ("PLabc", "old", False)
        sub = session.exec(select(Subscription)).one()
        assert (sub.targets, sub.metrics, sub.min_delta) == (["enc"], ["likes"], {"likes": 2})
        assert session.exec(select(WatchVideo)).one().video_id == "Tk23kQRFWcw"
        video = session.exec(select(Video)).one()
        assert (video.likes, video.comments, video.views) == (1, 2, 3)
        assert session.exec(select(QuotaDay)).one().units_used == 7
        assert session.exec(select(Delivery)).one().status == "delivered"


def test_a_database_made_by_create_all_is_adopted(tmp_path):
    """Databases made before migrations existed (create_all) are stamped, not re-created."""
    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    legacy = create_engine(url)
    SQLModel.metadata.create_all(legacy)
    with legacy.begin() as connection:
        connection.execute(text(ROWS["watch"]), {"now": datetime(2026, 11, 28, tzinfo=UTC)})
    legacy.dispose()
    engine = get_engine(url)
    init_db(engine)
    assert current_revision(engine) == head_revision()
    with Session(engine) as session:
        assert session.exec(select(Watch)).one().label == "old"


def test_the_api_works_on_postgresql(postgres_url, tmp_path):
    settings = make_settings(postgres_url, tmp_path)
    with TestClient(create_app(settings)) as client:
        engine = get_engine(postgres_url)
        alice, bob = auth(mint(engine, "alice")), auth(mint(engine, "bob"))
        created = client.post(
            "/watches",
            json={
                "video_id": "Tk23kQRFWcw",
                "notify": ["json://example.org/x"],
                "min_delta": {"likes": 3},
            },
            headers=alice,
        )
        assert created.status_code == 201, created.text
        watch = created.json()
        assert watch["subscriptions"][0]["min_delta"] == {"likes": 3}
        assert client.get(f"/watches/{watch['id']}", headers=bob).status_code == 404
        videos = client.get(f"/watches/{watch['id']}/videos", headers=alice).json()
        assert [v["video_id"] for v in videos] == ["Tk23kQRFWcw"]
        assert client.get(f"/watches/{2**31 - 1}", headers=alice).status_code == 404
        assert client.get("/quota", headers=alice).json()["units_used_today"] == 0
        assert client.get("/readyz").json()["checks"]["database"] == "ok"
        assert client.delete(f"/watches/{watch['id']}", headers=alice).status_code == 204
        assert client.get("/subscriptions", headers=alice).json() == []


def test_processes_starting_together_migrate_once(any_db_url):
    """Four processes upgrade one fresh database at the same moment: all succeed."""
    code = (
        "import sys; from tubewatch.db import get_engine, init_db; init_db(get_engine(sys.argv[1]))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, any_db_url], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], "\n".join(errors)[-3000:]
    engine = get_engine(any_db_url)
    assert current_revision(engine) == head_revision()
    assert _diff(engine) == []
