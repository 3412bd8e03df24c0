"""Alembic environment: runs on the connection `tubewatch.api.migrate` hands over.

``render_as_batch`` makes autogenerate write SQLite-safe ALTERs (table copy and move).
"""

from __future__ import annotations

from alembic import context

from tubewatch.db import all_tables

target_metadata = all_tables()


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through tubewatch.api.migrate (it passes a connection)")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
