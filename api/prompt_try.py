"""``attune prompts try``: one prompt version against a real user's context, recording nothing.

For ``system``, the turn is composed exactly as the graph would compose it now (the
preview path: profile, recalled memories, route), with the chosen version, and the model
the route names answers it; no turn, memory, profile change or job is written. The prompts
that read one message (``extraction``, ``instruction_detect``) are rendered as their
callers render them and answered by the base model with the message as the user turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from graph.nodes import text_of, to_langchain
from graph.runner import ChatMessage, TurnRequest
from graph.state import GenerationParams
from wiring.stack import Stack

TRIABLE = ("system", "extraction", "instruction_detect")
"""Prompts ``try`` can run; the others need inputs a message does not give (a session's
turns, feedback examples): use the optimizer or the summary job to exercise them."""


@dataclass(frozen=True)
class Tried:
    """What a prompt version produced for one message."""

    name: str
    version: str
    messages: list[dict[str, str]]
    target: str
    reply: str


async def try_prompt(
    stack: Stack, name: str, version: str, user_id: str, message: str, *, max_tokens: int
) -> Tried:
    """Run prompt ``name`` at ``version`` for ``user_id`` on ``message`` (see the module).

    ``stack``'s settings must already name ``version`` as the active one (the CLI opens the
    stack that way), so the composed prompt is the one a turn would get.

    Raises:
        ValueError: ``name`` is not one of ``TRIABLE``.
    """
    if name not in TRIABLE:
        raise ValueError(f"prompts try runs {', '.join(TRIABLE)}; not {name!r}")
    if name == "system":
        request = TurnRequest(
            messages=[ChatMessage(role="user", content=message)],
            params=GenerationParams(model="attune", max_tokens=max_tokens),
        )
        preview = await stack.runner.preview(user_id, request)
        messages = preview.messages
        adapter, target = preview.route["adapter"], preview.route["target"]
    else:
        variables = {"now": datetime.now(UTC).isoformat(timespec="seconds"), "speaker": "user"}
        variables["subject"] = "the user"
        system = stack.prompts.render(name, version, variables)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": message}]
        adapter, target = None, "base"
    model = stack.backend.chat_model(adapter=adapter, max_tokens=max_tokens, temperature=0.0)
    reply = await model.ainvoke(to_langchain(messages))
    return Tried(name, version, messages, target, text_of(reply))
