"""Needs matching: which resources a person needs next, with a reason staff can read.

A person's *interest* in a topic is

* ``DECLARED`` points when the topic is among their declared needs (contact ``needs``),
* plus ``ENGAGED`` points for each distinct resource on that topic they viewed or
  used, at most ``MAX_ENGAGED`` such resources per topic.

A resource's score is the sum of the person's interest in each of its topics. The
recommendations are the resources with a positive score that the person has not used
yet, best score first (ties by title, then id). No learned weights: the reason text
shows exactly where every point came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "DECLARED",
    "ENGAGED",
    "MAX_ENGAGED",
    "Interest",
    "Recommendation",
    "ResourceInfo",
    "interests",
    "recommend",
]

DECLARED = 3.0
ENGAGED = 1.0
MAX_ENGAGED = 3


@dataclass(frozen=True)
class ResourceInfo:
    """A resource of the catalogue, as matching sees it."""

    id: str
    title: str
    topics: frozenset[str]
    kind: str = ""
    url: str = ""


@dataclass(frozen=True)
class Interest:
    """A person's interest in one topic and where it comes from."""

    topic: str
    declared: bool
    engaged: int  # distinct resources on the topic viewed or used (capped)

    @property
    def points(self) -> float:
        return (DECLARED if self.declared else 0.0) + ENGAGED * self.engaged

    def describe(self) -> str:
        parts = ["a stated need"] if self.declared else []
        if self.engaged:
            plural = "s" if self.engaged > 1 else ""
            parts.append(f"{self.engaged} resource{plural} on it used")
        return f"{self.topic} ({' + '.join(parts)})"


@dataclass(frozen=True)
class Recommendation:
    """One recommended resource: its score and the reason in words."""

    resource_id: str
    title: str
    score: float
    reason: str
    kind: str = ""
    url: str = ""


def interests(declared: Iterable[str], engaged: Iterable[ResourceInfo]) -> dict[str, Interest]:
    """Each topic's interest from declared needs and the resources engaged with."""
    needs = {n.strip().lower() for n in declared if n and n.strip()}
    counts: dict[str, set[str]] = {}
    for resource in engaged:
        for topic in resource.topics:
            counts.setdefault(topic.strip().lower(), set()).add(resource.id)
    return {
        topic: Interest(topic, topic in needs, min(len(counts.get(topic, ())), MAX_ENGAGED))
        for topic in needs | set(counts)
    }


def recommend(
    profile: Mapping[str, Interest],
    catalogue: Iterable[ResourceInfo],
    used: Iterable[str],
    limit: int = 3,
) -> list[Recommendation]:
    """The ``limit`` best-matched resources not in ``used``, with their reasons."""
    done = set(used)
    found = []
    for resource in catalogue:
        if resource.id in done:
            continue
        hits = sorted(
            (profile[t] for t in {t.strip().lower() for t in resource.topics} if t in profile),
            key=lambda i: (-i.points, i.topic),
        )
        score = round(sum(i.points for i in hits), 6)
        if score <= 0:
            continue
        reason = "matches " + ", ".join(i.describe() for i in hits)
        found.append(
            Recommendation(resource.id, resource.title, score, reason, resource.kind, resource.url)
        )
    found.sort(key=lambda r: (-r.score, r.title, r.resource_id))
    return found[: max(limit, 0)]
