"""Alembic environment: runs migrations on the engine handed over by ``memory.records.db``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import adapters.placements  # the vLLM placement table (registers it, like the imports below)
import adapters.records  # noqa: F401  (training tables: samples, datasets, adapters)
import memory.pairs  # stored prompts, preference pairs
import memory.records.audit  # the audit log
import memory.records.experiments  # experiments and their exposures
import memory.records.jobs  # jobs (registers the tables, like the imports around it)
import memory.records.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from memory.retrieval.lexical import include_name

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    """Run migrations on the engine that ``memory.records.db.upgrade`` put in the config."""
    engine = config.attributes["engine"]
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            # alembic types the filter with Literal kinds; ours accepts any kind.
            include_name=include_name,  # type: ignore[arg-type]
        )
        context.run_migrations()


run_migrations_online()
