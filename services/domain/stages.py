"""Engagement stages and the stage map that assigns event types to them.

A person moves through three stages of engagement with the network's shared
information, knowledge and know-how: *aware* of it, *using* it, *producing* it.
The stage map says which engagement event types count for which stage; types it
does not mention are stored but count for no stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["DEFAULT_STAGE_MAP", "Stage", "StageMap", "StageMapError", "implied"]


class Stage(Enum):
    """An engagement stage, ordered ``AWARE < USE < PRODUCE``.

    The value is the public name (``"aware"``, ``"use"``, ``"produce"``); ``str(stage)``
    returns it too. Comparison operators follow the stage order, not the names.
    """

    AWARE = "aware"
    USE = "use"
    PRODUCE = "produce"

    @property
    def rank(self) -> int:
        """0 for aware, 1 for use, 2 for produce."""
        return _RANKS[self]

    def __str__(self) -> str:
        return self.value

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Stage):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Stage):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Stage):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Stage):
            return NotImplemented
        return self.rank >= other.rank


_RANKS: dict[Stage, int] = {stage: rank for rank, stage in enumerate(Stage)}


def implied(stage: Stage) -> tuple[Stage, ...]:
    """The stages a person counted at ``stage`` is counted at: it and every lower one.

    Produce implies use implies aware. Returned in ascending order, e.g.
    ``implied(Stage.USE) == (Stage.AWARE, Stage.USE)``.
    """
    return tuple(s for s in Stage if s <= stage)


class StageMapError(ValueError):
    """A stage map that cannot be used (bad stage name, bad type, type in two stages)."""


@dataclass(frozen=True)
class StageMap:
    """Which engagement event types count for which stage.

    Each type belongs to at most one stage (a type in two stages is refused: the
    implication rule already counts a higher stage at the lower ones).
    """

    aware: frozenset[str] = frozenset()
    use: frozenset[str] = frozenset()
    produce: frozenset[str] = frozenset()
    _index: dict[str, Stage] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        index: dict[str, Stage] = {}
        for stage in Stage:
            types = getattr(self, stage.value)
            if not isinstance(types, frozenset):
                # Accept any iterable of strings at construction, keep a frozenset.
                types = _as_type_set(stage.value, types)
                object.__setattr__(self, stage.value, types)
            for event_type in types:
                _check_type(stage.value, event_type)
                if event_type in index:
                    raise StageMapError(
                        f"event type {event_type!r} is in two stages: "
                        f"{index[event_type].value!r} and {stage.value!r}"
                    )
                index[event_type] = stage
        object.__setattr__(self, "_index", index)

    def types_of(self, stage: Stage) -> frozenset[str]:
        """The event types that map to ``stage`` (not including implied ones)."""
        types: frozenset[str] = getattr(self, stage.value)
        return types

    def stage_of(self, event_type: str) -> Stage | None:
        """The stage an event type counts for, or ``None`` when it counts for none."""
        return self._index.get(event_type)

    @property
    def event_types(self) -> frozenset[str]:
        """Every event type that counts for some stage."""
        return frozenset(self._index)

    @classmethod
    def from_dict(cls, obj: Mapping[str, Iterable[str]]) -> StageMap:
        """Build from ``{"aware": [types], "use": [types], "produce": [types]}``.

        A missing stage means no types for it; an unknown stage name, a type that is
        not a non-empty string, or a type in two stages raises :class:`StageMapError`.
        """
        if not isinstance(obj, Mapping):
            raise StageMapError("stage map: must be an object of stage -> list of types")
        names = {stage.value for stage in Stage}
        for key in obj:
            if key not in names:
                raise StageMapError(
                    f"stage map: unknown stage {key!r} (expected aware, use, produce)"
                )
        return cls(**{name: _as_type_set(name, obj.get(name, ())) for name in names})

    def to_dict(self) -> dict[str, list[str]]:
        """``{"aware": [...], "use": [...], "produce": [...]}`` with sorted type lists."""
        return {stage.value: sorted(self.types_of(stage)) for stage in Stage}


def _as_type_set(stage_name: str, types: object) -> frozenset[str]:
    if isinstance(types, str | bytes) or not isinstance(types, Iterable):
        raise StageMapError(f"{stage_name}: must be a list of event types")
    items = list(types)
    for event_type in items:
        _check_type(stage_name, event_type)
    return frozenset(items)


def _check_type(stage_name: str, event_type: object) -> None:
    if not isinstance(event_type, str) or not event_type.strip():
        raise StageMapError(
            f"{stage_name}: event types must be non-empty strings, got {event_type!r}"
        )


DEFAULT_STAGE_MAP = StageMap(
    aware=frozenset({"email.open", "link.click", "page.view", "toolkit.opened"}),
    use=frozenset({"resource.view", "resource.download", "resource.use", "reply.received"}),
    produce=frozenset(
        {"contribution.submitted", "resource.submitted", "story.shared", "toolkit.shared"}
    ),
)
"""The stage map of DESIGN.md, used until staff change it."""
