"""Accepting engagement: the ingest ledger and the outbox, in one transaction.

``POST /api/v1/events`` and the public tracking endpoints both end here. An event is
*accepted* once its id is in the ledger and its pseudonymised record is in the outbox,
committed together; the relay then carries it to Kafka. Kafka being down delays
delivery, never acceptance.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from services.analytics import prometheus
from services.db.repositories import SqlEventLedger
from services.db.unit_of_work import SqlUnitOfWork
from services.domain.events import NormalisedEvent, format_timestamp
from services.domain.pseudonyms import pseudonymise
from services.journeys.identity import resolve
from services.service_layer.handlers import IngestResult, accept_events, record_events
from services.tracking.bots import SCANNERS

log = logging.getLogger(__name__)
MAX_EVENTS = 1000


class Ingest:
    """Validates, pseudonymises, deduplicates and spools engagement events."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        secret: bytes,
        now: Callable[[], datetime] | None = None,
    ):
        self.sessions = sessions
        self.secret = secret
        self.now = now or (lambda: datetime.now(UTC))

    def person(self, person_ref: str) -> str:
        """The pseudonym ``person_ref`` counts as (a visitor merged into a contact: the contact's)."""
        return resolve(self.sessions, pseudonymise(self.secret, person_ref))

    def accept(self, items: Sequence[Any]) -> IngestResult:
        """The contract's ``POST /api/v1/events`` semantics for a list of 1..1000 items."""
        uow = SqlUnitOfWork(self.sessions)
        result = accept_events(uow, items, now=self.now(), to_record=self.to_record)
        _observe(result)
        return result

    def record(self, records: Sequence[dict[str, Any]]) -> IngestResult:
        """Spool server-made records (clicks, opens, webhooks) with unique event ids."""
        result = self._commit(records)
        _observe(result)
        return result

    def replay(self, records: Sequence[dict[str, Any]]) -> IngestResult:
        """``record`` the clicks of the click spool. Most were stored already (held in
        memory and retried), so those the ledger drops are not counted as duplicates:
        ``winwin_events_duplicate_total`` counts what senders sent twice, not our replays."""
        result = self._commit(records)
        _observe(IngestResult(accepted=result.accepted, rejected=result.rejected))
        return result

    def _commit(self, records: Sequence[dict[str, Any]]) -> IngestResult:
        result = IngestResult()
        with self.sessions() as session, session.begin():
            self._spool(session, records, result)
        return result

    def spool(self, session: Session, records: Sequence[dict[str, Any]]) -> IngestResult:
        """``record`` inside the caller's transaction; ``observe`` it once committed."""
        result = IngestResult()
        self._spool(session, records, result)
        return result

    @staticmethod
    def observe(result: IngestResult) -> None:
        _observe(result)

    def _spool(
        self, session: Session, records: Sequence[dict[str, Any]], result: IngestResult
    ) -> None:
        record_events(SqlEventLedger(session), records, result)

    def to_record(self, e: NormalisedEvent) -> dict[str, Any]:
        """The outbox record of a checked event: its person pseudonymised (and resolved),
        flagged when the site says a scanner sent it."""
        record: dict[str, Any] = {
            "event_id": e.event_id,
            "type": e.type,
            "occurred_at": format_timestamp(e.occurred_at),
            "person": self.person(e.person_ref),
            "source": "api",
            "properties": e.properties,
        }
        reason = _machine_reason(e.properties)
        if reason:
            record |= {"bot": True, "bot_reason": reason}
        for name in ("campaign_id", "channel", "messenger_id", "resource_id"):
            value = getattr(e, name)
            if value is not None:
                record[name] = value
        return record


def _observe(result: IngestResult) -> None:
    """Count a committed ingest in the Prometheus counters (``/metrics``)."""
    prometheus.EVENTS_ACCEPTED.inc(result.accepted)
    prometheus.EVENTS_DUPLICATE.inc(result.duplicates)
    prometheus.EVENTS_REJECTED.inc(len(result.rejected))


def _machine_reason(properties: dict[str, Any]) -> str | None:
    """The network's site may pass the visitor's user agent; scanners and crawlers are
    kept and flagged, not counted (DESIGN.md, Measurement semantics)."""
    agent = properties.get("user_agent")
    if isinstance(agent, str) and SCANNERS.search(agent):
        return "scanner-user-agent"
    return None
