"""The export's keyset pages on SQLite and PostgreSQL: every row once, in order, ties too."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from sqlalchemy.engine import Engine
from sqlmodel import Session

from memory.export import Rows, export_parts
from memory.records.tables import Thread, Turn, User, utcnow


def test_long_sections_page_through_equal_timestamps_on_both_databases(
    migrated_engine: Engine,
) -> None:
    start = utcnow()
    with Session(migrated_engine) as s:
        user, other = User(name="ana"), User(name="bob")
        s.add_all([user, other])
        s.flush()
        threads = [
            Thread(user_id=u.id, created_at=start + timedelta(seconds=i // 3))
            for i in range(10)
            for u in (user, other)
        ]
        s.add_all(threads)
        s.flush()
        turns = [
            Turn(
                user_id=t.user_id,
                thread_id=t.id,
                role="user",
                content=f"turn {i}",
                # Seven turns share each timestamp, so pages end inside runs of ties.
                created_at=start + timedelta(milliseconds=i // 7),
            )
            for i in range(1000)
            for t in threads[i % 2 : i % 2 + 1]
        ]
        s.add_all(turns)
        s.commit()
        ana = user.id

        def ordered(rows: list[Any]) -> list[str]:
            mine = [r for r in rows if r.user_id == ana]
            return [r.id for r in sorted(mine, key=lambda r: (r.created_at, r.id))]

        expected = {"threads": ordered(threads), "turns": ordered(turns)}
    # The memory service is read last, for the memories section; not reached here.
    parts = export_parts(migrated_engine, cast(Any, None), ana, batch=64)
    seen: dict[str, list[list[str]]] = {}
    for name, value in parts:
        if name == "memories":
            break
        if name in expected:
            assert isinstance(value, Rows)
            seen[name] = [[row["id"] for row in batch] for batch in value.batches]
    for name, ids in expected.items():
        assert [i for batch in seen[name] for i in batch] == ids, name
        assert all(0 < len(batch) <= 64 for batch in seen[name])
    assert len(seen["turns"]) == 8  # 500 of ana's turns: 7 full pages and a last one
