"""Double opt-in: a consent given as ``unconfirmed`` by a form or an import asks the
person to confirm it.

Saving such a contact records a request (``email_confirmations``) in the same
transaction; :func:`send_confirmations` (after the API's commit, and on every dispatcher
run, for imports) emails each request once, through the normal email sender (SendGrid
or the local outbox), in the contact's language, with a signed link ``/c/{token}``
(the token names the contact's row, never the address). Until the person confirms on
that page, their consent stays ``unconfirmed``, and only confirmed contacts get
campaigns. :func:`confirm` records the confirmation: its time and method on the
request, a consent change (source ``double-opt-in:link``) and the consent's time.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, Table, select, update
from sqlalchemy.orm import Session

from services.campaigns.channels.email import EmailSender, OutgoingEmail, TransientSendError
from services.db.models import Contact
from services.db.models_guardians import EmailConfirmation
from services.db.session import transaction
from services.db.upsert import upsert
from services.domain.consent import Consent
from services.domain.lifecycle import SendStatus
from services.tracking.consent import set_consent

if TYPE_CHECKING:
    from services.application import Container

__all__ = ["confirm", "request_confirmation", "send_confirmations"]

log = logging.getLogger(__name__)
BATCH = 100
METHOD = "link"
WORDS = {
    "en": ("Please confirm your email", "Please confirm that you want emails from the network:",
           "If you did not ask for this, ignore this email: you will get nothing more."),
    "es": ("Confirme su correo electrónico", "Confirme que desea recibir correos de la red:",
           "Si no lo pidió, ignore este correo: no recibirá nada más."),
}  # fmt: skip


def request_confirmation(session: Session, contact_ids: list[int], now: datetime) -> None:
    """Ask these contacts to confirm (again): a new request, not yet sent."""
    rows = [
        {"contact_id": i, "requested_at": now, "sent_at": None, "confirmed_at": None}
        | {"method": None}
        for i in contact_ids
    ]
    if rows:
        upsert(session, cast(Table, EmailConfirmation.__table__), rows, ["contact_id"])


def send_confirmations(container: Container, sender: EmailSender) -> int:
    """Email every request not sent yet (each once); how many were sent."""
    sent = 0
    while emails := _claim(container):
        try:
            results = sender.send(emails)
        except TransientSendError as exc:  # left for the next run
            log.warning("confirmation emails: %s; retried on the next run", exc)
            _release(container, [int(e.send_id.split("-")[1]) for e in emails])
            return sent
        failed = [int(r.send_id.split("-")[1]) for r in results if r.status != SendStatus.SENT]
        _release(container, failed)
        sent += len(results) - len(failed)
        if failed:
            return sent
    return sent


def _claim(container: Container) -> list[OutgoingEmail]:
    """Up to BATCH unsent requests of still-unconfirmed contacts, marked sent (claimed)."""
    now = container.now()
    E = EmailConfirmation
    with transaction(container.sessions) as session:
        rows = session.execute(
            select(E.contact_id, E.requested_at, Contact.email, Contact.name, Contact.language)
            .join(Contact, Contact.id == E.contact_id)
            .where(E.sent_at.is_(None), E.confirmed_at.is_(None))
            .where(Contact.email_consent == Consent.UNCONFIRMED, Contact.email.is_not(None))
            .order_by(E.contact_id)
            .limit(BATCH)
        ).all()
        mine = [row for row in rows if _claimed(session, row.contact_id, now)]
    return [_email(container, row) for row in mine]


def _claimed(session: Session, contact_id: int, now: datetime) -> bool:
    E = EmailConfirmation
    claim = update(E).where(E.contact_id == contact_id, E.sent_at.is_(None)).values(sent_at=now)
    return cast(CursorResult[Any], session.execute(claim)).rowcount == 1


def _release(container: Container, contact_ids: list[int]) -> None:
    if contact_ids:
        E = EmailConfirmation
        with transaction(container.sessions) as session:
            session.execute(update(E).where(E.contact_id.in_(contact_ids)).values(sent_at=None))


def _email(container: Container, row: Any) -> OutgoingEmail:
    subject, ask, ignore = WORDS.get((row.language or "en")[:2].lower(), WORDS["en"])
    token = container.tokens.sign("c", str(row.contact_id))
    url = f"{container.settings.public_base_url}/c/{token}"
    stamp = int(row.requested_at.timestamp())
    return OutgoingEmail(
        send_id=f"confirm-{row.contact_id}-{stamp}",
        to_email=row.email,
        to_name=row.name,
        subject=subject,
        html=None,
        text=f"{ask}\n\n{url}\n\n{ignore}\n",
    )


def confirm(container: Container, contact_id: int) -> bool:
    """Record the person's confirmation (idempotent); whether their consent changed."""
    now = container.now()
    E = EmailConfirmation
    with transaction(container.sessions) as session:
        request = session.get(E, contact_id)
        contact = session.get(Contact, contact_id)
        if request is None or request.confirmed_at is not None or contact is None:
            return False
        if contact.email_consent != Consent.UNCONFIRMED:
            return False  # an unsubscribe since stands: only a new request asks again
        request.confirmed_at, request.method = now, METHOD
        set_consent(session, [contact_id], "email", Consent.CONFIRMED, f"double-opt-in:{METHOD}")
        contact.email_consent_at = now
    return True
