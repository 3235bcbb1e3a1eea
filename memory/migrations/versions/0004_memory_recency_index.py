"""memory recency index

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 00:50:00.000000

An index on ``memories (user_id, created_at)``: the recency ranking of hybrid search and the
memory listing both read one user's memories newest first, which without it sorts every
memory of the user.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_memories_user_created", "memories", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_memories_user_created", table_name="memories")
