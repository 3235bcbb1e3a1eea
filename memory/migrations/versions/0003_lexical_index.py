"""lexical index (SQLite FTS5 / PostgreSQL tsvector)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 09:00:00.000000

These tables are not SQLModel models: they are written and read by ``memory.retrieval.lexical``
only, and ``memory.retrieval.lexical.include_name`` keeps them out of autogenerate comparisons.

On SQLite, ``memory_terms`` is an ordinary table (indexed by user and memory id, so
deletes and counts never scan the full-text index) and ``memory_fts`` an external-content
FTS5 index over its ``text``, kept in step by triggers. On PostgreSQL, ``memory_terms``
holds the ``tsvector`` itself, with a GIN index.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_UP = [
    """
    CREATE TABLE memory_terms (
        id INTEGER PRIMARY KEY,
        user_id VARCHAR(40) NOT NULL,
        memory_id VARCHAR(40) NOT NULL,
        kind VARCHAR(16) NOT NULL,
        text TEXT NOT NULL,
        UNIQUE (user_id, memory_id)
    )
    """,
    """
    CREATE VIRTUAL TABLE memory_fts USING fts5(
        text, content='memory_terms', content_rowid='id', tokenize='porter unicode61'
    )
    """,
    """
    CREATE TRIGGER memory_terms_ai AFTER INSERT ON memory_terms BEGIN
        INSERT INTO memory_fts(rowid, text) VALUES (new.id, new.text);
    END
    """,
    """
    CREATE TRIGGER memory_terms_ad AFTER DELETE ON memory_terms BEGIN
        INSERT INTO memory_fts(memory_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END
    """,
    """
    CREATE TRIGGER memory_terms_au AFTER UPDATE ON memory_terms BEGIN
        INSERT INTO memory_fts(memory_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO memory_fts(rowid, text) VALUES (new.id, new.text);
    END
    """,
]

_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS memory_terms_au",
    "DROP TRIGGER IF EXISTS memory_terms_ad",
    "DROP TRIGGER IF EXISTS memory_terms_ai",
    "DROP TABLE IF EXISTS memory_fts",
    "DROP TABLE IF EXISTS memory_terms",
]

# The primary key (user_id, memory_id) also serves every per-user lookup (its prefix).
_POSTGRES_UP = [
    """
    CREATE TABLE memory_terms (
        user_id VARCHAR(40) NOT NULL,
        memory_id VARCHAR(40) NOT NULL,
        kind VARCHAR(16) NOT NULL,
        tsv TSVECTOR NOT NULL,
        PRIMARY KEY (user_id, memory_id)
    )
    """,
    "CREATE INDEX ix_memory_terms_tsv ON memory_terms USING gin (tsv)",
]

_POSTGRES_DOWN = ["DROP TABLE IF EXISTS memory_terms"]


def _run(statements: list[str]) -> None:
    for sql in statements:
        op.execute(sql)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _run(_SQLITE_UP)
    elif dialect == "postgresql":
        _run(_POSTGRES_UP)
    else:
        raise NotImplementedError(f"no lexical index for {dialect}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _run(_SQLITE_DOWN)
    elif dialect == "postgresql":
        _run(_POSTGRES_DOWN)
