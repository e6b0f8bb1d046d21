"""Consent per channel, with history, and suppression.

* Consent (``unconfirmed`` / ``confirmed`` / ``unsubscribed``) is per contact and
  channel; every change adds a :class:`ConsentChange` row (who, what, when, which path).
  Email is the one channel addressed to contacts (social posts and toolkits are not).
* Suppression is per *address*, lower-cased (``Ann@Example.org`` is ``ann@example.org``),
  whichever contact holds it: an unsubscribe, a hard bounce, a spam report or a SendGrid
  group unsubscribe stop every later send to it. The dispatcher checks both when it
  loads each batch, so a change mid-campaign stops the sends after it.
* A hard bounce suppresses the address but is not the person's choice: their consent is
  left as it was (a corrected address can be mailed again).
* A SendGrid group unsubscribe that names its group (``asm_group_id``) is a choice about
  that group only (:func:`choose_group`): the address stays unsuppressed, the consent
  stays, and only campaigns of that group skip the person; a group resubscribe undoes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.orm import Session

from services.db.models import ConsentChange, Contact, Suppression
from services.db.models_consent import GroupUnsubscribe
from services.db.upsert import insert_ignore, upsert
from services.db.values import utc
from services.domain.consent import Consent, group_consent
from services.domain.events import format_timestamp
from services.domain.unsubscribe_groups import GroupChoice, choice_applies
from services.ids import new_id

if TYPE_CHECKING:
    from services.application import Container
    from services.tracking.links import SendView

__all__ = ["CHANNELS", "STATUSES", "choose_group", "consent_state", "normalise", "set_consent",
           "suppress", "suppress_address", "unsubscribe"]  # fmt: skip

CHANNELS = {"email": Contact.email_consent}
STATUSES: tuple[str, ...] = tuple(Consent)
#: SendGrid events that withdraw consent (a bounce only suppresses the address).
WITHDRAWING = {"unsubscribe", "spamreport", "group_unsubscribe"}


def normalise(email: str | None) -> str | None:
    """The form addresses are compared in: trimmed, lower-case; None when empty."""
    value = (email or "").strip().lower()
    return value or None


def set_consent(
    session: Session, contact_ids: list[int], channel: str, status: str, source: str
) -> int:
    """Set ``channel`` consent of the contacts to ``status``; history for those that
    changed. Returns how many changed."""
    if channel not in CHANNELS or status not in STATUSES:
        raise ValueError(f"consent: unknown channel {channel!r} or status {status!r}")
    column = CHANNELS[channel]
    changed = list(
        session.scalars(select(Contact.id).where(Contact.id.in_(contact_ids), column != status))
    )
    if changed:
        session.execute(update(Contact).where(Contact.id.in_(changed)).values({column: status}))
        session.add_all(
            ConsentChange(contact_id=i, channel=channel, status=status, source=source)
            for i in changed
        )
    return len(changed)


def unsubscribe(container: Container, send: SendView, source: str = "one-click") -> None:
    """Unsubscribe the contact of ``send`` from email: idempotent, suppression first; the
    ``email.unsubscribed`` event is spooled in the same transaction as the change."""
    with container.sessions() as session, session.begin():
        contact = session.get(Contact, send.contact_id)
        if contact is None:
            return
        suppress(session, contact.email_normalized or normalise(contact.email), "unsubscribe")
        changed = set_consent(session, [contact.id], "email", Consent.UNSUBSCRIBED, source)
        if not changed:
            return  # a second click (or a scanner's POST) is not a second unsubscribe
        spooled = container.ingest.spool(session, [{
            "event_id": f"unsub:{new_id()}", "type": "email.unsubscribed",
            "occurred_at": format_timestamp(container.now()), "person": send.person,
            "campaign_id": send.campaign_id, "send_id": send.id, "channel": "email",
            "source": "unsubscribe", "properties": {},
        }])  # fmt: skip
    container.ingest.observe(spooled)


def consent_state(container: Container, send: SendView) -> dict[str, Any]:
    """What the preference page shows: the email consent and whether it is suppressed."""
    with container.sessions() as session:
        contact = session.get(Contact, send.contact_id)
        if contact is None:
            return {"email": Consent.UNSUBSCRIBED, "suppressed": None}
        address = contact.email_normalized or normalise(contact.email)
        reason = session.scalar(
            select(Suppression.reason).where(Suppression.email_normalized == address)
        )
        return {"email": contact.email_consent, "suppressed": reason}


def suppress(session: Session, email_normalized: str | None, reason: str) -> None:
    if email_normalized:
        insert_ignore(
            session,
            cast(Table, Suppression.__table__),
            [{"email_normalized": email_normalized, "reason": reason}],
        )


def suppress_address(session: Session, email: str, reason: str) -> None:
    """Suppress an address reported by SendGrid (bounce, spam report, unsubscribe, group
    unsubscribe), case-insensitively; the last three also withdraw consent."""
    normalized = normalise(email)
    if normalized is None:
        return
    suppress(session, normalized, reason)
    if reason not in WITHDRAWING:
        return
    ids = _holders(session, normalized)
    if ids:
        set_consent(session, ids, "email", Consent.UNSUBSCRIBED, f"sendgrid:{reason}")


def choose_group(session: Session, email: str, choice: GroupChoice) -> None:
    """Record that the holders of ``email`` left or rejoined ``choice.group``, unless a
    newer choice of theirs about that group is stored. A change adds a history row
    (channel ``group:<id>``)."""
    ids = _holders(session, normalise(email))
    if not ids:
        return
    G = GroupUnsubscribe
    stored = {
        i: (left, utc(at))
        for i, left, at in session.execute(
            select(G.contact_id, G.unsubscribed, G.changed_at).where(
                G.contact_id.in_(ids), G.group_id == choice.group
            )
        )
    }
    newer = [i for i in ids if choice_applies(stored[i][1] if i in stored else None, choice)]
    row = {"group_id": choice.group, "unsubscribed": choice.unsubscribed, "changed_at": choice.at}
    upsert(session, cast(Table, GroupUnsubscribe.__table__),
           [{"contact_id": i} | row for i in newer], ["contact_id", "group_id"],
           newer_than="changed_at")  # fmt: skip
    status = group_consent(choice.unsubscribed)
    source = "sendgrid:group_" + ("unsubscribe" if choice.unsubscribed else "resubscribe")
    session.add_all(
        ConsentChange(contact_id=i, channel=f"group:{choice.group}", status=status, source=source)
        for i in newer
        if stored.get(i, (False,))[0] != choice.unsubscribed
    )


def _holders(session: Session, normalized: str | None) -> list[int]:
    """The contacts holding the address ``normalized`` (compared case-insensitively)."""
    if normalized is None:
        return []
    return list(
        session.scalars(
            select(Contact.id).where(
                or_(
                    Contact.email_normalized == normalized,
                    func.lower(func.trim(Contact.email)) == normalized,
                )
            )
        )
    )
