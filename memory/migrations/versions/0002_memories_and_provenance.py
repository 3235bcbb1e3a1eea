"""memories and provenance

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 22:38:09.495628
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "memories",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("speaker", sa.String(length=16), nullable=True),
        sa.Column("slot", sa.String(length=200), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("thread_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("invalid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("superseded_by", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("memories", schema=None) as batch_op:
        batch_op.create_index("ix_memories_user_hash", ["user_id", "content_hash"], unique=False)
        batch_op.create_index("ix_memories_user_kind", ["user_id", "kind"], unique=False)
        batch_op.create_index("ix_memories_user_slot", ["user_id", "slot"], unique=False)

    op.create_table(
        "memory_sources",
        sa.Column("memory_id", sa.String(length=40), nullable=False),
        sa.Column("turn_id", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["memory_id"],
            ["memories.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("memory_id", "turn_id"),
    )
    with op.batch_alter_table("memory_sources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_memory_sources_turn_id"), ["turn_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_memory_sources_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint("uq_threads_user_external", ["user_id", "external_id"])


def downgrade() -> None:
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.drop_constraint("uq_threads_user_external", type_="unique")
        batch_op.drop_column("external_id")

    with op.batch_alter_table("memory_sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_memory_sources_user_id"))
        batch_op.drop_index(batch_op.f("ix_memory_sources_turn_id"))

    op.drop_table("memory_sources")
    with op.batch_alter_table("memories", schema=None) as batch_op:
        batch_op.drop_index("ix_memories_user_slot")
        batch_op.drop_index("ix_memories_user_kind")
        batch_op.drop_index("ix_memories_user_hash")

    op.drop_table("memories")
