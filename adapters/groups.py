"""User groups for cold start: cluster users by profile and style, pool their data.

Each user becomes a vector of their persona profile's stated preferences (formality,
verbosity, formatting, tone, language) and the statistics of their own writing
(``profiles.data["style"]``, see ``memory.persona.style``); scikit-learn's KMeans, on standardized
features, splits them into at most ``group_count`` clusters. Clusters become ``UserGroup``
rows named ``auto-N``; a re-run keeps each cluster on the existing group it shares most
members with, so groups (and their adapters) survive re-clustering. Users an admin put in a
group of their own choosing (any name not starting with ``auto-``) are left there.

A group's dataset pools its members' scrubbed data (``adapters.dataset_sources``); users
with too little data of their own are routed to their group's adapter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from memory.records.tables import Profile, User, UserGroup

AUTO_PREFIX = "auto-"

_STYLE_FEATURES = (
    "avg_words",
    "avg_sentence_words",
    "vocabulary",
    "exclamation_rate",
    "question_rate",
    "emoji_rate",
    "ellipsis_rate",
    "lowercase_start",
    "all_caps_words",
    "ends_with_period",
)
_CHOICES = {"formality": ("casual", "formal"), "verbosity": ("brief", "detailed")}
_FORMATTING = ("emoji", "lists", "markdown")
FEATURES = (
    *_STYLE_FEATURES,
    *_CHOICES,
    *(f"formatting.{k}" for k in _FORMATTING),
    "tone",
    "language",
)


def _signed(value: Any, options: tuple[str, str]) -> float:
    if value == options[0]:
        return -1.0
    if value == options[1]:
        return 1.0
    return 0.0


def profile_vector(data: Mapping[str, Any]) -> list[float]:
    """A profile document as numbers, in the order of :data:`FEATURES` (pure).

    Missing statistics and preferences count as 0 (no signal); counts are log-scaled so
    that one very long-winded user does not dominate the distance.
    """
    style = data.get("style") or {}
    values: list[float] = []
    for name in _STYLE_FEATURES:
        raw = style.get(name, 0.0)
        number = float(raw) if isinstance(raw, int | float) else 0.0
        values.append(math.log1p(max(number, 0.0)) if name.startswith("avg_") else number)
    for name, options in _CHOICES.items():
        values.append(_signed(data.get(name), options))
    formatting = data.get("formatting") or {}
    for key in _FORMATTING:
        flag = formatting.get(key)
        values.append(1.0 if flag is True else -1.0 if flag is False else 0.0)
    values.append(1.0 if data.get("tone") else 0.0)
    language = str(data.get("language") or "").strip().lower()
    values.append(1.0 if language and language != "english" else 0.0)
    return values


def cluster(vectors: Sequence[Sequence[float]], k: int, *, seed: int = 0) -> list[int]:
    """KMeans labels for ``vectors`` on standardized features (pure, deterministic).

    Args:
        vectors: One per user, all the same length.
        k: Most clusters; fewer when there are fewer distinct vectors.
        seed: KMeans' random state.

    Returns:
        A cluster label per vector.
    """
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    if not vectors:
        return []
    x = np.asarray(vectors, dtype=float)  # (users, features)
    distinct = len({tuple(row) for row in x.tolist()})
    k = max(1, min(k, distinct))
    if k == 1:
        return [0] * len(vectors)
    scaled = StandardScaler().fit_transform(x)
    labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(scaled)
    return [int(label) for label in labels]


def match_clusters(
    clusters: Mapping[int, set[str]], groups: Mapping[str, set[str]]
) -> dict[int, str | None]:
    """Map each new cluster to the existing group it shares most members with (pure).

    Greedy by overlap, largest first; each group is used once. A cluster sharing no
    member with any free group maps to ``None`` (a new group).
    """
    scored = sorted(
        (
            (len(members & groups[g]), label, g)
            for label, members in clusters.items()
            for g in groups
        ),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    out: dict[int, str | None] = {label: None for label in clusters}
    used: set[str] = set()
    for overlap, label, group in scored:
        if overlap == 0 or out[label] is not None or group in used:
            continue
        out[label] = group
        used.add(group)
    return out


@dataclass(frozen=True)
class Assignment:
    """What a re-clustering changed."""

    users: int
    groups: dict[str, list[str]]
    """Group id → its members' ids, after the change."""
    moved: int
    """Users whose group changed."""
    created: list[str]
    """Groups created by this run."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "users": self.users,
            "groups": {g: len(m) for g, m in self.groups.items()},
            "moved": self.moved,
            "created": self.created,
        }


def assign_groups(session: Session, *, group_count: int, seed: int = 0) -> Assignment:
    """Cluster users into ``auto-N`` groups and update ``User.group_id``; caller commits.

    Users in a group an admin chose (a name without the ``auto-`` prefix) are skipped.
    """
    groups = {g.id: g for g in session.exec(select(UserGroup)).all()}
    auto = {gid for gid, g in groups.items() if g.name.startswith(AUTO_PREFIX)}
    users = [
        u
        for u in session.exec(select(User).order_by(col(User.id))).all()
        if u.group_id is None or u.group_id in auto
    ]
    if not users:
        return Assignment(0, {}, 0, [])
    profiles = {
        p.user_id: p.data
        for p in session.exec(
            select(Profile).where(col(Profile.user_id).in_([u.id for u in users]))
        ).all()
    }
    labels = cluster(
        [profile_vector(profiles.get(u.id, {})) for u in users], group_count, seed=seed
    )
    clusters: dict[int, set[str]] = {}
    for user, label in zip(users, labels, strict=True):
        clusters.setdefault(label, set()).add(user.id)
    current: dict[str, set[str]] = {gid: set() for gid in auto}
    for user in users:
        if user.group_id in current:
            current[user.group_id].add(user.id)
    mapping = match_clusters(clusters, current)
    taken = {groups[g].name for g in auto}
    created: list[str] = []
    result: dict[str, list[str]] = {}
    for label in sorted(clusters):
        gid = mapping[label]
        if gid is None:
            n = 1
            while f"{AUTO_PREFIX}{n}" in taken:
                n += 1
            group = UserGroup(name=f"{AUTO_PREFIX}{n}")
            taken.add(group.name)
            session.add(group)
            session.flush()
            gid = group.id
            created.append(gid)
        result[gid] = sorted(clusters[label])
    moved = 0
    by_user = {uid: gid for gid, members in result.items() for uid in members}
    for user in users:
        if user.group_id != by_user[user.id]:
            user.group_id = by_user[user.id]
            session.add(user)
            moved += 1
    session.flush()
    return Assignment(len(users), result, moved, created)
