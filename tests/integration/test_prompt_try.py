"""``attune prompts try``: a prompt version against a real user's context, recording nothing."""

from __future__ import annotations

import pytest
from sqlmodel import Session, func, select

from api.prompt_try import try_prompt
from memory.records import repo
from memory.records.tables import Memory, Turn
from tests.fakes import ScriptedBackend
from wiring.settings import Settings
from wiring.stack import open_stack


async def test_a_system_version_is_composed_for_the_user_and_nothing_is_recorded(
    settings: Settings, backend: ScriptedBackend
) -> None:
    settings.graph.prompt_version = "v1"  # as the CLI sets it for `try system v1`
    async with open_stack(settings, backend=backend) as stack:
        with stack.store.session() as session:
            user, _ = repo.create_user(session, name="tess")
            profile = repo.get_profile(session, user_id=user.id)
            profile.data = {"preferred_name": "Captain"}
            session.add(profile)
            session.commit()
            uid = user.id
        tried = await try_prompt(stack, "system", "v1", uid, "call me later", max_tokens=8)
        assert tried.target == "base" and tried.reply
        assert "Captain" in tried.messages[0]["content"]  # the user's own profile
        assert tried.messages[-1] == {"role": "user", "content": "call me later"}
        assert backend.calls  # the model answered the composed messages
        other = await try_prompt(stack, "extraction", "v1", uid, "I moved to Oslo", max_tokens=8)
        assert other.messages[1]["content"] == "I moved to Oslo"
        with Session(stack.engine) as session:
            assert session.exec(select(func.count()).select_from(Turn)).one() == 0
            assert session.exec(select(func.count()).select_from(Memory)).one() == 0
        with pytest.raises(ValueError, match="summary"):
            await try_prompt(stack, "summary", "v1", uid, "x", max_tokens=8)
