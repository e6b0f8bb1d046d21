"""Recommendations from SQL: the catalogue, declared needs, and what people used.

The scoring is :mod:`services.domain.needs` (pure, explained there). "Used" means an
event at stage *use* or higher on the resource (``resource.view``, ``resource.use``...
with the stage map in force), not flagged as a bot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db.models import Contact, EngagementEvent, Resource
from services.db.values import chunks
from services.domain.needs import Recommendation, ResourceInfo, interests, recommend
from services.domain.stages import Stage

__all__ = ["catalogue", "recommended_for"]

_USED = [Stage.USE.value, Stage.PRODUCE.value]


def catalogue(session: Session) -> dict[str, ResourceInfo]:
    """Every resource with its topics (lower case)."""
    rows = session.execute(
        select(Resource.id, Resource.title, Resource.kind, Resource.url, Resource.topics)
    )
    return {
        r.id: ResourceInfo(
            r.id, r.title, frozenset(str(t).strip().lower() for t in r.topics or []), r.kind, r.url
        )
        for r in rows
    }


def recommended_for(
    session: Session, persons: Iterable[str], limit: int = 3
) -> dict[str, list[Recommendation]]:
    """The best ``limit`` resources for each person (pseudonym) not used yet.

    Meant for the template context's ``recommended``: one call per batch of recipients,
    three queries whatever the batch size (plus one per 900 persons).
    """
    wanted = sorted(set(persons))
    resources = catalogue(session)
    needs: dict[str, list[str]] = {}
    used: dict[str, set[str]] = defaultdict(set)
    E = EngagementEvent
    for chunk in chunks(wanted):
        stmt = select(Contact.pseudonym, Contact.needs).where(Contact.pseudonym.in_(chunk))
        needs.update({p: [str(n) for n in (n_ or [])] for p, n_ in session.execute(stmt)})
        events = (
            select(E.person, E.resource_id)
            .distinct()
            .where(
                E.person.in_(chunk),
                E.resource_id.is_not(None),
                E.bot.is_(False),
                E.stage.in_(_USED),
            )
        )
        for person, resource_id in session.execute(events):
            used[person].add(str(resource_id))
    out = {}
    for person in wanted:
        engaged = [resources[r] for r in used[person] if r in resources]
        profile = interests(needs.get(person, []), engaged)
        out[person] = recommend(profile, resources.values(), used[person], limit)
    return out
