"""jobs, stored prompts and preference pairs (issue 6, Workers)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 00:50:00.000000

``jobs``: background work with a unique idempotency key, status, progress, attempts,
heartbeat, error and result. ``turn_prompts``: the messages each assistant turn's model
call was sent. ``preference_pairs``: chosen/rejected replies with their prompt and sources.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("queue", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("user_id", sa.String(length=40), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", name="uq_jobs_key"),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_status_heartbeat", ["status", "heartbeat_at"], unique=False)
        batch_op.create_index("ix_jobs_user_created", ["user_id", "created_at"], unique=False)

    op.create_table(
        "turn_prompts",
        sa.Column("turn_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("turn_id"),
    )
    with op.batch_alter_table("turn_prompts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_turn_prompts_user_id"), ["user_id"], unique=False)

    op.create_table(
        "preference_pairs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("prompt_turn_id", sa.String(length=40), nullable=False),
        sa.Column("prompt", sa.JSON(), nullable=False),
        sa.Column("chosen", sa.Text(), nullable=False),
        sa.Column("rejected", sa.Text(), nullable=False),
        sa.Column("rule", sa.String(length=20), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("preference_pairs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_preference_pairs_prompt_turn_id"), ["prompt_turn_id"], unique=False
        )
        batch_op.create_index(
            "ix_preference_pairs_user_created", ["user_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("preference_pairs", schema=None) as batch_op:
        batch_op.drop_index("ix_preference_pairs_user_created")
        batch_op.drop_index(batch_op.f("ix_preference_pairs_prompt_turn_id"))
    op.drop_table("preference_pairs")
    with op.batch_alter_table("turn_prompts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_turn_prompts_user_id"))
    op.drop_table("turn_prompts")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_user_created")
        batch_op.drop_index("ix_jobs_status_heartbeat")
    op.drop_table("jobs")
