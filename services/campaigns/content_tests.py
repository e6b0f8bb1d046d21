"""The dispatcher's side of a content test (A/B/n): decide when due, let through only
who may go now, and render each recipient's variant.

:func:`start` (once per dispatch of a campaign) loads the campaign's content test and,
at or after its decision time, makes the decision (services/experiments/variants.py).
:func:`admit` (per batch, after the holdout) keeps the test share with their variant,
and the rest only once the decision is made. :func:`emails` renders each variant's
recipients with that variant's texts (its template and language variants, with the
inline subject over them); links, pixel and unsubscribe are the campaign's as ever.
:func:`undecided` keeps the campaign from finishing before its decision: a small
audience may fall wholly in the test share and be sent long before the decision time,
and a finished campaign is never dispatched again, so its decision would never be taken.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from services.campaigns.channels.email import OutgoingEmail
from services.campaigns.personalise import CampaignRun, Personaliser, Recipient, Version
from services.campaigns.schedule import template_versions
from services.db.session import transaction
from services.domain.variants import ContentTest, Variant
from services.experiments.variants import assign, content_test_of, decide

if TYPE_CHECKING:
    from services.application import Container

__all__ = ["ContentRun", "admit", "emails", "start", "undecided"]

log = logging.getLogger(__name__)
Texts = tuple[Version, dict[str, Version]]  # the default, and language key → variant


@dataclass
class ContentRun:
    """One dispatch's view of a campaign's content test."""

    test: ContentTest
    chosen: int | None  # None until the decision
    texts: list[Texts]  # per variant
    given: dict[str, int] = field(default_factory=dict)  # person → variant, this dispatch


def start(container: Container, run: CampaignRun, now: datetime) -> ContentRun | None:
    """The campaign's content test (``None`` without one), decided if its time has come."""
    with transaction(container.sessions) as session:
        found = content_test_of(session, run.id)
        if found is None:
            return None
        test, chosen = found
        if chosen is None and now >= test.decide_at:
            chosen = decide(session, run.id, test, now)
            log.info("campaign %s: content test decided, variant %d", run.id, chosen)
        texts = [_texts(session, run, v) for v in test.variants]
        session.expunge_all()
    return ContentRun(test, chosen, texts)


def undecided(content: ContentRun | None) -> bool:
    """A content test still to be decided: its campaign stays ``sending`` until then,
    even with nobody left to get the chosen variant."""
    return content is not None and content.chosen is None


def admit(
    session: Session, container: Container, run: CampaignRun, content: ContentRun | None,
    allowed: list[Any], now: datetime,
) -> list[Any]:  # fmt: skip
    """The rows (sends with a ``person``) that go now, each person's variant noted."""
    if content is None:
        return allowed
    persons = [row.person for row in allowed]
    given = assign(session, container.settings, run.id, (content.test, content.chosen),
                   persons, now)  # fmt: skip
    content.given.update(given)
    return [row for row in allowed if row.person in given]


def emails(
    personaliser: Personaliser, run: CampaignRun, content: ContentRun | None,
    recipients: Sequence[Recipient], batch_id: str,
) -> tuple[list[OutgoingEmail], list[tuple[Recipient, str]]]:  # fmt: skip
    """Render each variant's recipients with its texts (one render job per variant)."""
    if content is None:
        return personaliser.emails(run, recipients, batch_id)
    groups: dict[int, list[Recipient]] = defaultdict(list)
    for r in recipients:
        groups[content.given[r.person]].append(r)
    out: list[OutgoingEmail] = []
    failed: list[tuple[Recipient, str]] = []
    for variant, group in sorted(groups.items()):
        default, languages = content.texts[variant]
        # replace() keeps the run's dicts (links, persons): links are made once, shared
        texts_run = replace(run, default=default, variants=languages)
        done, broken = personaliser.emails(texts_run, group, batch_id)
        out += done
        failed += broken
    return out, failed


def _texts(session: Session, run: CampaignRun, variant: Variant) -> Texts:
    if variant.template_id is None:
        default, languages = run.default, dict(run.variants)
    else:
        default, languages = template_versions(session, variant.template_id)
    if variant.subject is None:
        return default, languages
    subject = variant.subject
    return replace(default, subject=subject), {
        key: replace(v, subject=subject) for key, v in languages.items()
    }
