"""Schema migrations (Alembic): `upgrade_to_head(engine)` brings any database to the latest.

The revisions live in ``migrations/versions`` (shipped as package data). `tubewatch.db.init_db`
calls `upgrade_to_head`, so every process that opens the database upgrades it first.
A revision per change to `tubewatch/models.py` keeps existing databases (and their data)
working; `tests/test_api_migrations.py` fails when the models and the revisions disagree.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

import tubewatch.models  # noqa: F401  (registers the tables)

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The first revision: a database `SQLModel.metadata.create_all` made before migrations
# existed, and that differs from the models, is stamped with it, then upgraded.
INITIAL_REVISION = "0001"


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

    Safe to call from several processes at once: a loser of the race that finds the database
    already at the target carries on.
    """
    try:
        _upgrade(engine, revision)
    except DBAPIError:
        if revision == "head" and current_revision(engine) == head_revision():
            log.info("schema upgraded concurrently by another process")
            return
        raise


def _upgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        tables = set(inspect(connection).get_table_names())
        if "alembic_version" not in tables and "watch" in tables:
            # Made by create_all: current if it matches the models, else the initial schema.
            diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
            stamp = INITIAL_REVISION if diff else "head"
            log.info("database without migration history: stamping %s", stamp)
            command.stamp(alembic_config(connection), stamp)
        command.upgrade(alembic_config(connection), revision)
