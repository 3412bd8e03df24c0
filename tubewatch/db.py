"""The database engine and sessions (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

import tubewatch.models  # noqa: F401  (registers the tables)


@lru_cache
def get_engine(url: str) -> Engine:
    """One engine per URL per process. SQLite runs in WAL mode so services can share a file."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def all_tables() -> MetaData:
    """The metadata with every table tubewatch keeps: the shared models, the embedded bus's
    log and the change engine's state. Migrations are generated and checked against it."""
    import tubewatch.changes.state  # noqa: F401
    import tubewatch.embedded_bus  # noqa: F401

    return SQLModel.metadata


def init_db(engine: Engine) -> None:
    """Bring the schema to the current version.

    Uses the Alembic migrations where they exist (services/api/migrations), else create_all.
    """
    try:
        from tubewatch.api.migrate import upgrade_to_head
    except ImportError:
        SQLModel.metadata.create_all(engine)
    else:
        upgrade_to_head(engine)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except Exception:
            session.rollback()
            raise
