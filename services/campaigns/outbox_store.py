"""The local outbox: where emails go when no SendGrid key is set (CONTRACT.md, /outbox).

Each row is exactly what would have gone to SendGrid for one recipient: the rendered
subject, html and text, the headers, the ``custom_args`` (ids and pseudonyms only) and
the reply address. Rows are keyed by send id, so a batch that is
stored again after a crash (stored, then killed before the sends were marked sent)
adds nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.campaigns.channels.email import OutgoingEmail
from services.db.models import Campaign, LocalEmail, Send
from services.db.session import transaction
from services.db.upsert import insert_ignore
from services.domain.events import format_timestamp

__all__ = ["SqlOutboxStore", "list_outbox"]


class SqlOutboxStore:
    """:class:`~services.campaigns.channels.email.OutboxStore` on the ``local_emails`` table."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def add(self, emails: Sequence[OutgoingEmail]) -> None:
        """Store the emails in one transaction (one look-up, one bulk insert)."""
        if not emails:
            return
        with transaction(self._sessions) as session:
            send_ids = [e.send_id for e in emails]
            campaign_of = dict(
                session.execute(
                    select(Send.id, Send.campaign_id).where(Send.id.in_(send_ids))
                ).all()
            )
            rows = [
                {
                    "send_id": e.send_id,
                    "campaign_id": campaign_of.get(e.send_id),
                    "to": e.to_email,
                    "subject": e.subject,
                    "html": e.html,
                    "text": e.text,
                    "headers": dict(e.headers),
                    "custom_args": dict(e.custom_args),
                    "reply_to": e.reply_to,
                }
                for e in emails
            ]
            insert_ignore(session, LocalEmail.__table__, rows)


def list_outbox(
    session: Session, campaign_id: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest ``limit`` local emails (optionally of one campaign), newest first, with
    the ``asm`` group their campaign would send them under (SendGrid unsubscribe group)."""
    stmt = (
        select(LocalEmail, Campaign.unsubscribe_group)
        .outerjoin(Campaign, Campaign.id == LocalEmail.campaign_id)
        .order_by(LocalEmail.id.desc())
        .limit(max(0, limit))
    )
    if campaign_id is not None:
        stmt = stmt.where(LocalEmail.campaign_id == campaign_id)
    return [
        {
            "send_id": row.send_id,
            "to": row.to,
            "subject": row.subject,
            "html": row.html,
            "text": row.text,
            "headers": dict(row.headers or {}),
            "custom_args": dict(row.custom_args or {}),
            "reply_to": row.reply_to,
            "asm": {"group_id": group} if group is not None else None,
            "created_at": _iso(row.created_at),
        }
        for row, group in session.execute(stmt)
    ]


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    # SQLite hands back naive datetimes; the server default stores UTC.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_timestamp(moment)
