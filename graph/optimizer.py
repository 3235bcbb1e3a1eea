"""Runs the procedural-memory optimizer with the graph's model, prompts and embedder.

``memory.persona.procedural`` holds the logic (propose, gate, activate, roll back) over plain
callables; this module supplies them from the turn graph's services, so the optimizer
sees the same system prompt a turn would. The Workers issue schedules :func:`optimize_user`.
"""

from __future__ import annotations

from typing import Any

from graph.context import Services
from graph.nodes import text_of, to_langchain
from graph.prompts import SystemPromptVars
from memory.persona import procedural
from memory.persona.document import directives, instruction_texts
from memory.persona.procedural import OptimizeResult
from memory.records import repo


def optimize_user(
    services: Services,
    user_id: str,
    *,
    max_tokens: int = 160,
    margin: float = procedural.DEFAULT_MARGIN,
    min_examples: int = procedural.MIN_EXAMPLES,
) -> OptimizeResult:
    """Propose, score and maybe activate a new instruction block for ``user_id``; commit.

    Generation is greedy (temperature 0) so the candidate and the current block are
    compared on the same footing.
    """
    model = services.backend.chat_model(
        adapter=None, max_tokens=max_tokens, temperature=0.0, seed=0
    )

    def chat(messages: list[dict[str, str]]) -> str:
        return text_of(model.invoke(to_langchain(messages)))

    def render(name: str, variables: dict[str, Any]) -> str:
        return services.prompts.render(name, services.settings.version_of(name), variables)

    with services.store.session() as session:
        profile = repo.get_profile(session, user_id=user_id).data
        today = services.clock().strftime("%A %d %B %Y")
        version = services.settings.version_of("system")

        def system(block: str | None) -> str:
            variables = SystemPromptVars(
                today=today,
                preferred_name=profile.get("preferred_name"),
                directives=directives(profile),
                instructions=instruction_texts(profile),
                learned=block,
                known=[],
                memories=[],
                style_hints=[],
                interests=[],
                client_system=None,
            )
            return services.prompts.render("system", version, dict(variables))

        result = procedural.optimize(
            session,
            user_id=user_id,
            chat=chat,
            embed=services.memory.embedder.embed,
            render=render,
            system=system,
            margin=margin,
            min_examples=min_examples,
        )
        session.commit()
        return result
