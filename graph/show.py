"""What ``attune graph show`` prints: the per-turn graph, and the prompts each part uses.

The drawing is LangGraph's own (Mermaid, from the compiled graph's structure), so it cannot
drift from the code. ``PROMPTS_BY_STEP`` names which prompt each node, or the offline work
a turn triggers, renders; the version beside it is the one active under the settings.
"""

from __future__ import annotations

from graph.builder import build_turn_graph
from graph.config import GraphSettings

PROMPTS_BY_STEP: dict[str, tuple[str, ...]] = {
    "apply_instructions": ("instruction_detect",),
    "compose_prompt": ("system",),
    "record → distill job (worker)": ("extraction",),
    "session summaries (worker, beat)": ("summary",),
    "prompt optimizer (worker, beat)": ("procedural_critique", "procedural_rewrite"),
}
"""Node (or offline step) → the prompts it renders. ``instruction_detect`` runs only with
``ATTUNE_MEMORY__INSTRUCTION_DETECTOR=llm``; ``extraction`` only with the ``llm``
extractor."""


def mermaid() -> str:
    """The turn graph as a Mermaid flowchart."""
    return build_turn_graph().compile().get_graph().draw_mermaid()


def describe(settings: GraphSettings) -> str:
    """The drawing, then each step's prompts with their active versions."""
    width = max(len(step) for step in PROMPTS_BY_STEP)
    lines = [mermaid().rstrip(), "", "prompts (active version under the current settings):"]
    for step, names in PROMPTS_BY_STEP.items():
        shown = ", ".join(f"{n} {settings.version_of(n)}" for n in names)
        lines.append(f"  {step:<{width}}  {shown}")
    lines.append(
        "  set with ATTUNE_GRAPH__PROMPT_VERSION (system) or "
        """ATTUNE_GRAPH__PROMPT_VERSIONS='{"name": "vN"}'; `attune prompts list` shows versions"""
    )
    return "\n".join(lines)
