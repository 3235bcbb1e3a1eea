"""Builds the per-turn graph. Callers compile it with their checkpointer.

Every node function is wrapped by ``graph.telemetry.timed`` (latency histogram, trace span)
here, where the graph is built, so node bodies know nothing of observability.
"""

from __future__ import annotations

import itertools

from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import ToolNode

from graph import nodes, regenerate
from graph.context import TurnContext
from graph.state import InputState, TurnState
from graph.telemetry import timed
from tools.memory import MEMORY_TOOLS

PIPELINE = ("load_context", "apply_instructions", "recall", "compose_prompt", "route")


def build_turn_graph() -> StateGraph[TurnState, TurnContext, InputState, TurnState]:
    """The whole turn: context → instructions → recall → prompt → route → generate → record.

    ``generate`` may loop through ``tools`` when the backend supports tool calls. A
    regeneration enters at ``restore_prompt`` (the stored prompt and target) instead, and
    goes on through the same ``generate`` and ``record``.
    """
    builder = _pipeline()
    builder.add_conditional_edges(START, regenerate.entry, [PIPELINE[0], regenerate.RESTORE])
    builder.add_node(regenerate.RESTORE, timed(regenerate.RESTORE, regenerate.restore_prompt))
    builder.add_edge(regenerate.RESTORE, "generate")
    builder.add_node("generate", timed("generate", nodes.generate))
    builder.add_node("tools", ToolNode(list(MEMORY_TOOLS), messages_key="scratch"))
    builder.add_node("record", timed("record", nodes.record))
    builder.add_edge("route", "generate")
    builder.add_conditional_edges("generate", nodes.after_generate, ["tools", "record"])
    builder.add_edge("tools", "generate")
    builder.add_edge("record", END)
    return builder


def build_preview_graph() -> StateGraph[TurnState, TurnContext, InputState, TurnState]:
    """The turn up to the route, for prompt previews: generates and records nothing."""
    builder = _pipeline()
    builder.add_edge(START, PIPELINE[0])
    builder.add_edge("route", END)
    return builder


def _pipeline() -> StateGraph[TurnState, TurnContext, InputState, TurnState]:
    """The nodes from ``load_context`` to ``route``; callers add the edge from ``START``."""
    builder = StateGraph(TurnState, context_schema=TurnContext, input_schema=InputState)
    builder.add_node("load_context", timed("load_context", nodes.load_context))
    builder.add_node("apply_instructions", timed("apply_instructions", nodes.apply_instructions))
    builder.add_node("recall", timed("recall", nodes.recall))
    builder.add_node("compose_prompt", timed("compose_prompt", nodes.compose_prompt))
    builder.add_node("route", timed("route", nodes.route))
    for a, b in itertools.pairwise(PIPELINE):
        builder.add_edge(a, b)
    return builder
