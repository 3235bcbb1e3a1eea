"""Builds the per-turn graph. Callers compile it with their checkpointer."""

from __future__ import annotations

import itertools

from langgraph.graph import END, START, StateGraph

from graph import nodes
from graph.context import TurnContext
from graph.state import InputState, TurnState

PIPELINE = ("load_context", "apply_instructions", "recall", "compose_prompt", "route")


def build_turn_graph() -> StateGraph[TurnState, TurnContext, InputState, TurnState]:
    """The whole turn: context → instructions → recall → prompt → route → generate → record."""
    builder = _pipeline()
    builder.add_node("generate", nodes.generate)
    builder.add_node("record", nodes.record)
    builder.add_edge("route", "generate")
    builder.add_edge("generate", "record")
    builder.add_edge("record", END)
    return builder


def build_preview_graph() -> StateGraph[TurnState, TurnContext, InputState, TurnState]:
    """The turn up to the route, for prompt previews: generates and records nothing."""
    builder = _pipeline()
    builder.add_edge("route", END)
    return builder


def _pipeline() -> StateGraph[TurnState, TurnContext, InputState, TurnState]:
    builder = StateGraph(TurnState, context_schema=TurnContext, input_schema=InputState)
    builder.add_node("load_context", nodes.load_context)
    builder.add_node("apply_instructions", nodes.apply_instructions)
    builder.add_node("recall", nodes.recall)
    builder.add_node("compose_prompt", nodes.compose_prompt)
    builder.add_node("route", nodes.route)
    builder.add_edge(START, PIPELINE[0])
    for a, b in itertools.pairwise(PIPELINE):
        builder.add_edge(a, b)
    return builder
