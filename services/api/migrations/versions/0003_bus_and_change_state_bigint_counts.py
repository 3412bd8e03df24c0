"""embedded bus and change state tables, BIGINT counts

The embedded bus (bus_topic, bus_record, bus_offset) and the change engine's state
(change_state) used to create their tables themselves: a table that already exists is kept
as it is. Video counts become BIGINT (views pass 2**31 on PostgreSQL).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 03:44:09.100677
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _missing(table: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(table)


def upgrade() -> None:
    if _missing("bus_offset"):
        op.create_table(
            "bus_offset",
            sa.Column("group_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
            sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(length=249), nullable=False),
            sa.Column("next_offset", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("group_id", "topic"),
        )
    if _missing("bus_record"):
        op.create_table(
            "bus_record",
            sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(length=249), nullable=False),
            sa.Column("offset", sa.BigInteger(), nullable=False),
            sa.Column("key", sa.LargeBinary(), nullable=True),
            sa.Column("value", sa.LargeBinary(), nullable=True),
            sa.Column("headers", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
            sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("topic", "offset"),
        )
        with op.batch_alter_table("bus_record", schema=None) as batch_op:
            batch_op.create_index("ix_bus_record_timestamp_ms", ["timestamp_ms"], unique=False)
    if _missing("bus_topic"):
        op.create_table(
            "bus_topic",
            sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=249), nullable=False),
            sa.Column("next_offset", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("name"),
        )
    if _missing("change_state"):
        op.create_table(
            "change_state",
            sa.Column("video_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
            sa.Column("partition", sa.Integer(), nullable=False),
            sa.Column("likes", sa.BigInteger(), nullable=True),
            sa.Column("comments", sa.BigInteger(), nullable=True),
            sa.Column("views", sa.BigInteger(), nullable=True),
            sa.Column("input_offset", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("video_id"),
        )
        with op.batch_alter_table("change_state", schema=None) as batch_op:
            batch_op.create_index(
                batch_op.f("ix_change_state_partition"), ["partition"], unique=False
            )
    with op.batch_alter_table("video", schema=None) as batch_op:
        batch_op.alter_column(
            "likes", existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=True
        )
        batch_op.alter_column(
            "comments", existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=True
        )
        batch_op.alter_column(
            "views", existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=True
        )


def downgrade() -> None:
    with op.batch_alter_table("video", schema=None) as batch_op:
        batch_op.alter_column(
            "views", existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=True
        )
        batch_op.alter_column(
            "comments", existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=True
        )
        batch_op.alter_column(
            "likes", existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=True
        )

    with op.batch_alter_table("change_state", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_change_state_partition"))

    op.drop_table("change_state")
    op.drop_table("bus_topic")
    with op.batch_alter_table("bus_record", schema=None) as batch_op:
        batch_op.drop_index("ix_bus_record_timestamp_ms")

    op.drop_table("bus_record")
    op.drop_table("bus_offset")
