"""stored prompts name every turn whose text they hold; backfill prompts, pairs, snapshots

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 12:30:00.000000

``turn_prompts.source_turn_ids``: the turns whose text a stored prompt holds (issue 11:
deleting a turn must reach every prompt, pair, snapshot and adapter holding its text).

Backfill, from what the rows themselves show: a prompt's or pair's messages are matched to
the turns of its thread (history copied verbatim) and to the memories its system message
quotes (their source turns). Which profile version or learned block a past prompt showed
is not recorded, so those sources are not backfilled. Pairs get the sources of their
prompt added to ``sources.turn_ids``; a snapshot gets the new sources of every pair on a
prompt it was built from added to ``source_turn_ids`` (its manifest blob is unchanged:
deletion reads the row).
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from memory.provenance import history_turns, quoting_memories

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_turns = sa.table(
    "turns",
    sa.column("id", sa.String),
    sa.column("user_id", sa.String),
    sa.column("thread_id", sa.String),
    sa.column("role", sa.String),
    sa.column("content", sa.Text),
    sa.column("reply_to_id", sa.String),
)
_memories = sa.table(
    "memories", sa.column("id", sa.String), sa.column("user_id", sa.String), sa.column("text")
)
_links = sa.table("memory_sources", sa.column("memory_id", sa.String), sa.column("turn_id"))
_prompts = sa.table(
    "turn_prompts",
    sa.column("turn_id", sa.String),
    sa.column("user_id", sa.String),
    sa.column("messages", sa.JSON),
    sa.column("source_turn_ids", sa.JSON),
)
_pairs = sa.table(
    "preference_pairs",
    sa.column("id", sa.String),
    sa.column("user_id", sa.String),
    sa.column("prompt_turn_id", sa.String),
    sa.column("prompt", sa.JSON),
    sa.column("sources", sa.JSON),
)
_snapshots = sa.table(
    "dataset_snapshots", sa.column("id", sa.String), sa.column("source_turn_ids", sa.JSON)
)


def upgrade() -> None:
    with op.batch_alter_table("turn_prompts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source_turn_ids", sa.JSON(), nullable=False, server_default="[]")
        )
    _backfill(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("turn_prompts", schema=None) as batch_op:
        batch_op.drop_column("source_turn_ids")


class _User:
    """One user's turns by thread and memories with their source turns."""

    def __init__(self, conn: sa.Connection, user_id: str) -> None:
        self.threads: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        self.turns: dict[str, tuple[str, str | None]] = {}  # id → (thread, reply_to)
        for tid, thread, role, content, reply_to in conn.execute(
            sa.select(
                _turns.c.id,
                _turns.c.thread_id,
                _turns.c.role,
                _turns.c.content,
                _turns.c.reply_to_id,
            ).where(_turns.c.user_id == user_id)
        ):
            self.threads[thread].append((tid, role, content))
            self.turns[tid] = (thread, reply_to)
        self.memories = [
            (mid, text)
            for mid, text in conn.execute(
                sa.select(_memories.c.id, _memories.c.text).where(_memories.c.user_id == user_id)
            )
        ]
        self.links: dict[str, set[str]] = defaultdict(set)
        for mid, tid in conn.execute(
            sa.select(_links.c.memory_id, _links.c.turn_id)
            .join(_memories, _memories.c.id == _links.c.memory_id)
            .where(_memories.c.user_id == user_id)
        ):
            self.links[mid].add(tid)

    def sources(self, turn_id: str, messages: list[dict[str, str]]) -> set[str]:
        """The turns whose text ``messages`` (sent for or about ``turn_id``) hold."""
        thread, reply_to = self.turns.get(turn_id, (None, None))
        found = {reply_to} if reply_to else set()
        if thread is not None:
            found.update(history_turns(messages, self.threads[thread]))
        for mid in quoting_memories(messages, self.memories):
            found |= self.links[mid]
        return found


def _backfill(conn: sa.Connection) -> None:
    users: dict[str, _User] = {}

    def user(user_id: str) -> _User:
        if user_id not in users:
            users[user_id] = _User(conn, user_id)
        return users[user_id]

    for turn_id, user_id, messages in conn.execute(
        sa.select(_prompts.c.turn_id, _prompts.c.user_id, _prompts.c.messages)
    ).all():
        found = sorted(user(user_id).sources(turn_id, messages or []))
        conn.execute(
            _prompts.update().where(_prompts.c.turn_id == turn_id).values(source_turn_ids=found)
        )
    by_prompt_turn: dict[str, set[str]] = defaultdict(set)
    for pair_id, user_id, prompt_turn_id, prompt, sources in conn.execute(
        sa.select(
            _pairs.c.id,
            _pairs.c.user_id,
            _pairs.c.prompt_turn_id,
            _pairs.c.prompt,
            _pairs.c.sources,
        )
    ).all():
        old: list[str] = list((sources or {}).get("turn_ids", []))
        added = user(user_id).sources(prompt_turn_id, prompt or []) - set(old)
        turn_ids = [*old, *sorted(added)]
        by_prompt_turn[prompt_turn_id].update(turn_ids)
        if added:
            new: dict[str, Any] = {**(sources or {}), "turn_ids": turn_ids}
            conn.execute(_pairs.update().where(_pairs.c.id == pair_id).values(sources=new))
    for snapshot_id, turn_ids in conn.execute(
        sa.select(_snapshots.c.id, _snapshots.c.source_turn_ids)
    ).all():
        have = set(turn_ids or [])
        wider = have.union(*(by_prompt_turn[t] for t in have if t in by_prompt_turn))
        if wider != have:
            conn.execute(
                _snapshots.update()
                .where(_snapshots.c.id == snapshot_id)
                .values(source_turn_ids=sorted(wider))
            )
