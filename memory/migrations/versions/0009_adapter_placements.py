"""adapter placements: which vLLM replica holds which adapter (issue 13)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 18:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "adapter_placements",
        sa.Column("adapter", sa.String(length=200), nullable=False),
        sa.Column("replica", sa.String(length=300), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("adapter", "replica"),
    )


def downgrade() -> None:
    op.drop_table("adapter_placements")
