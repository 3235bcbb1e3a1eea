"""Choosing the model target of a turn (pure)."""

from __future__ import annotations

from collections.abc import Callable

from graph.state import Route

AUTO_MODEL = "attune"
BASE_MODEL = "attune-base"
LOGICAL_MODELS = (AUTO_MODEL, BASE_MODEL)


def choose_route(
    *,
    requested_model: str,
    user_adapter: str | None,
    group_adapter: str | None,
    is_available: Callable[[str], bool],
) -> Route:
    """Pick the user's adapter, else their group's, else the base model.

    ``attune-base`` forces the base model. An adapter that is named but not available on
    the backend is skipped, and the reason says so.
    """
    if requested_model == BASE_MODEL:
        return Route(kind="base", adapter=None, target="base", reason="base model requested")
    skipped: list[str] = []
    for kind, adapter in (("user", user_adapter), ("group", group_adapter)):
        if adapter is None:
            continue
        if is_available(adapter):
            reason = f"{kind} adapter"
            if skipped:
                reason += f" ({'; '.join(skipped)})"
            return Route(kind=kind, adapter=adapter, target=f"{kind}:{adapter}", reason=reason)  # type: ignore[typeddict-item]
        skipped.append(f"{kind} adapter {adapter!r} not available")
    reason = "no adapter" if not skipped else "; ".join(skipped)
    return Route(kind="base", adapter=None, target="base", reason=reason)
