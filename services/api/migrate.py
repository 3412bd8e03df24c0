"""Schema migrations (Alembic): `upgrade_to_head(engine)` brings any database to the latest.

The revisions live in ``migrations/versions`` (shipped as package data). `tubewatch.db.init_db`
calls `upgrade_to_head`, so every process that opens the database upgrades it first.
A revision per change to `tubewatch/models.py` keeps existing databases (and their data)
working; `tests/test_api_migrations.py` fails when the models and the revisions disagree.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from tubewatch.db import all_tables

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The first revision: a database `SQLModel.metadata.create_all` made before migrations
# existed, and that differs from the models, is stamped with it, then upgraded.
INITIAL_REVISION = "0001"
_PG_LOCK_KEY = 0x7475626577617463  # "tubewatc": the advisory lock migrations take


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"migrations have several heads: {heads}"
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine, revision: str = "head") -> None:
    """Upgrades the database to ``revision`` (default: the latest).

    Several processes (api, poller, notifier) may start at once on one database: the upgrade
    runs under a lock (a file lock on the SQLite file, an advisory lock on PostgreSQL), so one
    of them migrates and the others then find the schema current.
    """
    with _migration_lock(engine):
        _upgrade(engine, revision)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        if not path or path == ":memory:" or path.startswith("file:"):
            yield  # one connection, one process: nothing to race with
            return
        # A lock file beside the database, never the database file itself: closing any
        # descriptor of a file drops every POSIX lock this process holds on it, SQLite's
        # included, and a process whose SQLite locks vanished corrupts what others read
        # ("disk I/O error"; see "How To Corrupt An SQLite Database File", section 2.2).
        with open(f"{path}.migrate-lock", "ab") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    elif engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})
                connection.commit()
    else:
        yield


def _upgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        tables = set(inspect(connection).get_table_names())
        if "alembic_version" not in tables and "watch" in tables:
            # Made by create_all: current if it matches the models, else the initial schema.
            diff = compare_metadata(MigrationContext.configure(connection), all_tables())
            stamp = INITIAL_REVISION if diff else "head"
            log.info("database without migration history: stamping %s", stamp)
            command.stamp(alembic_config(connection), stamp)
        command.upgrade(alembic_config(connection), revision)
