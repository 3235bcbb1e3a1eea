"""What a rich profile costs in the system prompt: 50 facts and 10 standing instructions.

Builds a profile with every preference set and 10 standing instructions, offers 50 fact
memories to ``compose`` and counts tokens with the base model's own tokenizer: the
system prompt as sent under the default budgets, the same with every fact admitted, and
the bare prompt, so each part's share is visible. Prints a table; ``--json`` writes it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from adapters.config import ModelSettings
from graph.compose import compose
from graph.config import GraphSettings
from graph.prompts import PromptLibrary
from graph.state import MemoryItem
from memory.persona.document import apply_updates
from memory.persona.instructions import detect_instructions
from memory.persona.style import compute_style

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
RULES = [
    "From now on call me Captain Coder and answer like a pirate.",
    "Always answer in French.",
    "Stop using emoji.",
    "Shorter answers please.",
    "No bullet points.",
    "From now on, end every answer with a question.",
    "Always cite your sources.",
    "Never apologize.",
    "Going forward, use metric units.",
    "Always include a code example.",
    "From now on, explain acronyms the first time you use them.",
    "Always give times in 24-hour format.",
    "Never use the word delve.",
    "Always mention the date of the information.",
    "From now on, put the answer first and the reasoning after.",
]
FACTS = [
    f"The user {verb} {thing}."
    for verb, things in [
        ("lives in", ["Lisbon", "a flat near the river", "the Alfama district"]),
        ("works as", ["a data engineer", "a part-time teacher", "an open-source maintainer"]),
        ("has", ["a cat named Biscuit", "two sisters", "a vintage bicycle", "a sourdough starter"]),
        ("likes", ["jazz", "chess", "long walks", "Portuguese tarts", "sci-fi novels", "tea"]),
        ("is learning", ["Japanese", "the cello", "Rust", "to sail"]),
        ("dislikes", ["cilantro", "crowded trains", "loud cafes", "spam calls"]),
        ("visited", ["Kyoto in 2024", "Oslo last winter", "Porto twice", "Marrakesh"]),
        ("plans to", ["run a marathon", "move to Berlin", "adopt a dog", "write a book"]),
        ("owns", ["a 3D printer", "a kayak", "too many plants", "a mechanical keyboard"]),
        ("studied", ["physics", "at the University of Coimbra", "music theory"]),
        ("is allergic to", ["peanuts", "cats, a little", "penicillin"]),
        ("wakes up at", ["6 am", "sunrise on weekends"]),
        ("drinks", ["oat milk lattes", "green tea", "no alcohol"]),
        ("follows", ["Formula 1", "the Tour de France", "three astronomy podcasts"]),
    ]
    for thing in things
][:50]


def run(model_settings: ModelSettings) -> dict[str, Any]:
    """Measure the composed system prompt's token cost for the rich profile."""
    from transformers import AutoTokenizer

    from adapters.model_store import resolve_model_dir

    tokenizer = AutoTokenizer.from_pretrained(str(resolve_model_dir(model_settings)))

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False))

    updates = [u for rule in RULES for u in detect_instructions(rule)]
    profile = apply_updates({}, updates, now=NOW)
    profile["style"] = compute_style(["ok thx", "sure", "what about rust?", "nice 👍"] * 3)
    profile["interests"] = ["jazz", "chess", "sailing"]
    memories = [
        MemoryItem(id=f"m{i}", kind="fact", role="user", text=f, date="2026-11-01", score=1.0)
        for i, f in enumerate(FACTS)
    ]
    graph = GraphSettings()
    lib = PromptLibrary()

    def system(budget: int, mems: list[MemoryItem], prof: dict[str, Any]) -> tuple[int, int]:
        composed = compose(
            prompts=lib,
            version=graph.prompt_version,
            today=NOW,
            profile=prof,
            memories=mems,
            history=[{"role": "user", "content": "hi"}],
            client_system=None,
            count_tokens=count,
            memory_budget=budget,
            history_budget=graph.history_token_budget,
            context_window=graph.context_window,
            max_tokens=256,
            profile_budget=graph.profile_token_budget,
        )
        return count(composed.system_prompt), len(composed.memories)

    n_rules = len(profile.get("instructions", []))
    rows = {
        "bare prompt (empty profile, no memories)": system(0, [], {}),
        "profile only (directives + instructions + style)": system(0, [], profile),
        f"profile + memories within the default budget ({graph.memory_token_budget})": system(
            graph.memory_token_budget, memories, profile
        ),
        "profile + all 50 facts (budget lifted)": system(100_000, memories, profile),
    }
    return {
        "prompt_version": graph.prompt_version,
        "instructions": n_rules,
        "directives": sum(1 for u in updates if u.field != "instructions"),
        "facts_offered": len(memories),
        "rows": {k: {"system_tokens": t, "facts_kept": m} for k, (t, m) in rows.items()},
    }


def report(result: dict[str, Any]) -> str:
    """A printable table of ``run``'s result."""
    lines = [
        f"system prompt {result['prompt_version']}: {result['directives']} preferences, "
        f"{result['instructions']} standing instructions, {result['facts_offered']} facts offered",
        f"{'case':<62}{'tokens':>8}{'facts kept':>12}",
    ]
    for name, row in result["rows"].items():
        lines.append(f"{name:<62}{row['system_tokens']:>8}{row['facts_kept']:>12}")
    return "\n".join(lines)


if __name__ == "__main__":
    from wiring.settings import Settings

    print(report(run(Settings().model)))
