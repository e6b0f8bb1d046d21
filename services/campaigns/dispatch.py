"""The email dispatcher: due campaigns → one Send row per recipient → rendered emails.

``Dispatcher.dispatch_due(now)`` claims email campaigns whose time has come
(``scheduled`` → ``sending``), materialises their Send rows once (unique per
(campaign, contact): nobody gets a campaign twice), then sends the pending ones in
batches of at most ``batch_size``. Every batch costs a fixed number of SQL statements,
whatever its size: one query loads the batch together with each contact's current
consent and suppression (so an unsubscribe between two batches is honoured), one bulk
update marks the suppressed, and one transaction marks the results and enqueues the
touches (``winwin.touches.v1``) through the transactional outbox.

Crash safety
------------
A send is marked ``sent`` only after SendGrid accepted it (202), and the sender never
reports an email as accepted when it was not. The remaining window: a process killed
between SendGrid's 202 and the commit of that batch's results leaves those sends
``pending``, and the next run sends them again (at most one batch, ≤ ``batch_size``
emails, can be duplicated this way). A later issue closes it (e.g. by recording the
request before posting it).

Campaign-level links: each (campaign, resource) and each distinct ``track(url)``
destination gets one Link row, created once; a recipient's URL is that link's id signed
together with the recipient's send id, so no per-recipient rows are written and no
address ever appears in a URL.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from services.bus import topics
from services.bus.outbox import enqueue
from services.campaigns.channels.email import (
    EmailSender,
    LocalOutboxSender,
    OutgoingEmail,
    RateLimited,
    SendGridEmailSender,
    SendResult,
    TransientSendError,
    list_unsubscribe_headers,
)
from services.campaigns.outbox_store import SqlOutboxStore
from services.campaigns.rendering import TemplateProblem
from services.db.models import Campaign, Contact, Link, Resource, Send, Suppression, Template
from services.db.session import transaction
from services.db.upsert import insert_ignore
from services.domain.audience import parse_audience
from services.domain.events import format_timestamp
from services.ids import new_id
from services.tracking.links import check_destination, create_link

__all__ = ["Dispatcher", "make_sender", "progress"]

log = logging.getLogger(__name__)

#: Contacts read per page when materialising a campaign's sends.
CONTACT_PAGE = 5000
_SENDS = cast(Table, Send.__table__)
_MARK_SENT = (
    update(_SENDS)
    .where(_SENDS.c.id == bindparam("b_id"), _SENDS.c.status == "pending")
    .values(status="sent", message_id=bindparam("b_message_id"), sent_at=bindparam("b_sent_at"))
)
_MARK = (
    update(_SENDS)
    .where(_SENDS.c.id == bindparam("b_id"), _SENDS.c.status == "pending")
    .values(status=bindparam("b_status"), error=bindparam("b_error"))
)


def make_sender(container: Any) -> EmailSender:
    """SendGrid when a key is set, else the local outbox (CONTRACT.md, Configuration)."""
    settings = container.settings
    if settings.sendgrid_enabled:
        return SendGridEmailSender(
            settings.sendgrid_api_key.get_secret_value(),
            settings.sendgrid_from,
            settings.sendgrid_api_host,
        )
    return LocalOutboxSender(SqlOutboxStore(container.sessions))


def progress(session: Session, campaign_id: str) -> dict[str, int]:
    """``{"total", "sent", "suppressed", "failed"}`` of a campaign (pending count in total)."""
    counts = dict(
        session.execute(
            select(Send.status, func.count())
            .where(Send.campaign_id == campaign_id)
            .group_by(Send.status)
        ).all()
    )
    return {
        "total": sum(counts.values()),
        "sent": counts.get("sent", 0),
        "suppressed": counts.get("suppressed", 0),
        "failed": counts.get("failed", 0),
    }


@dataclass(frozen=True, slots=True)
class _Recipient:
    send_id: str
    person: str
    email: str
    name: str | None
    language: str | None
    attributes: dict[str, Any]


@dataclass
class _CampaignRun:
    """What one campaign's sending needs, loaded once per dispatch_due."""

    id: str
    name: str
    template: Template
    resources: list[Resource]
    resource_links: dict[str, str]  # resource id → link id
    tracked_links: dict[str, str]  # destination → link id
    persons: dict[str, str] = field(default_factory=dict)  # send id → pseudonym


class Dispatcher:
    """Sends due email campaigns through an :class:`EmailSender` (see the module doc).

    ``sleep`` is injectable so tests do not wait out rate limits; transient failures
    (5xx, timeouts) are retried ``transient_retries`` times with exponential backoff
    from ``backoff_seconds``, then left pending for the next run.
    """

    def __init__(
        self,
        container: Any,
        sender: EmailSender,
        batch_size: int = 1000,
        *,
        sleep: Callable[[float], None] = time.sleep,
        transient_retries: int = 3,
        backoff_seconds: float = 1.0,
        max_rate_limit_waits: int = 100,
    ) -> None:
        if not 1 <= batch_size <= 1000:
            raise ValueError("batch_size must be between 1 and 1000")
        self._c = container
        self._sessions = container.sessions
        self._sender = sender
        self.batch_size = batch_size
        self._sleep = sleep
        self._transient_retries = transient_retries
        self._backoff = backoff_seconds
        self._max_waits = max_rate_limit_waits
        self._base = container.settings.public_base_url.rstrip("/")

    # -- entry points -------------------------------------------------------------------

    def run(self, stop_event: threading.Event, poll: float = 1.0) -> None:
        """Dispatch due campaigns every ``poll`` seconds until ``stop_event`` is set."""
        while not stop_event.is_set():
            try:
                self.dispatch_due(self._c.now())
            except Exception:  # noqa: BLE001 - a dispatcher keeps running; next poll retries
                log.exception("dispatch failed; retrying in %.1fs", poll)
            stop_event.wait(poll)

    def dispatch_due(self, now: datetime | None = None) -> int:
        """Send every due email campaign as far as possible; return how many were sent."""
        now = (now or self._c.now()).astimezone(UTC)
        sent = 0
        for campaign_id in self._claim_due(now):
            try:
                sent += self._send_campaign(campaign_id)
            except Exception:  # noqa: BLE001 - one broken campaign must not block the others
                log.exception("campaign %s: dispatch failed", campaign_id)
        return sent

    # -- claiming and materialising -----------------------------------------------------

    def _claim_due(self, now: datetime) -> list[str]:
        """Campaigns to work on: due ``scheduled`` ones (claimed now) and ``sending`` ones."""
        with self._sessions() as session:
            due = session.execute(
                select(Campaign.id, Campaign.status)
                .where(
                    Campaign.channel == "email",
                    Campaign.status.in_(("scheduled", "sending")),
                    or_(Campaign.send_at.is_(None), Campaign.send_at <= now),
                )
                .order_by(Campaign.created_at, Campaign.id)
            ).all()
        ready = []
        for campaign_id, status in due:
            try:
                if status == "sending" or self._start(campaign_id):
                    ready.append(campaign_id)
            except Exception:  # noqa: BLE001 - e.g. a bad audience: leave it scheduled, log it
                log.exception("campaign %s: could not start", campaign_id)
        return ready

    def _start(self, campaign_id: str) -> bool:
        """``scheduled`` → ``sending`` and its Send rows, in one transaction."""
        with transaction(self._sessions) as session:
            claim = update(Campaign).where(
                Campaign.id == campaign_id, Campaign.status == "scheduled"
            )
            result = cast(CursorResult[Any], session.execute(claim.values(status="sending")))
            if result.rowcount != 1:
                return False  # another dispatcher got there first
            campaign = session.get_one(Campaign, campaign_id)
            total = self._materialise(session, campaign)
        log.info("campaign %s: sending to %d recipient(s)", campaign_id, total)
        return True

    def _materialise(self, session: Session, campaign: Campaign) -> int:
        """One pending Send per confirmed contact with an address in the audience."""
        audience = parse_audience(campaign.audience)
        columns = (Contact.id, Contact.pseudonym, Contact.role, Contact.language) + (
            Contact.external_id,
            Contact.tags,
            Contact.attributes,
        )
        last, total = 0, 0
        while True:
            page = session.execute(
                select(*columns)
                .where(
                    Contact.id > last,
                    Contact.email.is_not(None),
                    Contact.email != "",
                    Contact.email_consent == "confirmed",
                )
                .order_by(Contact.id)
                .limit(CONTACT_PAGE)
            ).all()
            if not page:
                return total
            last = page[-1].id
            rows = [
                {"id": new_id(), "campaign_id": campaign.id, "contact_id": c.id}
                | {"person": c.pseudonym, "status": "pending"}
                for c in page
                if audience.matches(
                    {"role": c.role, "language": c.language, "external_id": c.external_id}
                    | {"tags": c.tags or [], "attributes": c.attributes or {}}
                )
            ]
            insert_ignore(session, _SENDS, rows)
            total += len(rows)

    # -- sending ------------------------------------------------------------------------

    def _send_campaign(self, campaign_id: str) -> int:
        run = self._prepare(campaign_id)
        if run is None:
            return 0
        cursor, sent = "", 0
        while True:
            recipients, cursor, fetched = self._next_batch(run, cursor)
            if not fetched:
                break
            emails, failures = self._render(run, recipients)
            if failures:
                self._record(run, failures)
            delivered, deferred = self._deliver(run, emails)
            sent += delivered
            if deferred:
                log.warning("campaign %s: %d send(s) left for the next run", run.id, deferred)
                return sent
        self._finish(run.id)
        return sent

    def _prepare(self, campaign_id: str) -> _CampaignRun | None:
        """Load the campaign, its template and resources; create its links once."""
        with transaction(self._sessions) as session:
            campaign = session.get(Campaign, campaign_id)
            if campaign is None or campaign.status != "sending":
                return None
            template = session.get_one(Template, campaign.template_id)
            wanted = [str(r) for r in campaign.resources or []]
            found = {
                r.id: r for r in session.scalars(select(Resource).where(Resource.id.in_(wanted)))
            }
            missing = [r for r in wanted if r not in found]
            if missing:
                log.warning("campaign %s: unknown resource(s) %s skipped", campaign_id, missing)
            resources = [found[r] for r in wanted if r in found]
            run = _CampaignRun(campaign.id, campaign.name, template, resources, {}, {})
            self._load_links(session, run)
            for resource in resources:
                if resource.id not in run.resource_links:
                    link = self._new_link(session, run.id, resource.url, resource_id=resource.id)
                    run.resource_links[resource.id] = link
            session.expunge_all()
        return run

    def _load_links(self, session: Session, run: _CampaignRun) -> None:
        rows = session.execute(
            select(Link.id, Link.destination, Link.resource_id).where(
                Link.campaign_id == run.id,
                Link.channel == "email",
                Link.send_id.is_(None),
                Link.person.is_(None),
                Link.messenger_id.is_(None),
            )
        ).all()
        urls = {r.id: r.url for r in run.resources}
        for link_id, destination, resource_id in rows:
            if resource_id is None:
                run.tracked_links.setdefault(destination, link_id)
            elif urls.get(resource_id) == destination:
                run.resource_links.setdefault(resource_id, link_id)

    def _new_link(self, session: Session, campaign_id: str, url: str, **fields: Any) -> str:
        link = create_link(
            session, self._c.settings, url, campaign_id=campaign_id, channel="email", **fields
        )
        return link.id

    def _tracked_link(self, run: _CampaignRun, url: str) -> str:
        """The campaign-level link id for ``url`` (created on first use, then cached)."""
        if not isinstance(url, str) or not url.strip().lower().startswith(("http://", "https://")):
            raise ValueError(f"track() needs an absolute http(s) URL, got {url!r}")
        destination = check_destination(url, self._c.settings)
        link_id = run.tracked_links.get(destination)
        if link_id is None:
            with transaction(self._sessions) as session:
                link_id = self._new_link(session, run.id, destination)
            run.tracked_links[destination] = link_id
        return link_id

    def _next_batch(self, run: _CampaignRun, cursor: str) -> tuple[list[_Recipient], str, int]:
        """The next pending sends after ``cursor``, consent and suppression re-checked in
        the same query; the ones no longer allowed are marked ``suppressed`` here.

        Joining the campaign's status makes a cancelled campaign stop between batches.
        """
        normalized = func.coalesce(Contact.email_normalized, func.lower(func.trim(Contact.email)))
        stmt = (
            select(
                Send.id,
                Send.person,
                Contact.email,
                Contact.name,
                Contact.language,
                Contact.attributes,
                Contact.email_consent,
                Suppression.reason,
            )
            .join(Contact, Contact.id == Send.contact_id)
            .join(Campaign, and_(Campaign.id == Send.campaign_id, Campaign.status == "sending"))
            .outerjoin(Suppression, Suppression.email_normalized == normalized)
            .where(Send.campaign_id == run.id, Send.status == "pending", Send.id > cursor)
            .order_by(Send.id)
            .limit(self.batch_size)
        )
        with transaction(self._sessions) as session:
            rows = session.execute(stmt).all()
            recipients, blocked = [], []
            for row in rows:
                reason = _blocked_reason(row.email, row.email_consent, row.reason)
                if reason:
                    blocked.append({"b_id": row.id, "b_status": "suppressed", "b_error": reason})
                    continue
                run.persons[row.id] = row.person
                recipients.append(
                    _Recipient(
                        row.id, row.person, row.email, row.name, row.language, row.attributes or {}
                    )
                )
            if blocked:
                session.execute(_MARK, blocked)
        return recipients, (rows[-1].id if rows else cursor), len(rows)

    def _render(
        self, run: _CampaignRun, recipients: Sequence[_Recipient]
    ) -> tuple[list[OutgoingEmail], list[SendResult]]:
        emails, failures = [], []
        for recipient in recipients:
            try:
                emails.append(self._email(run, recipient))
            except TemplateProblem as problem:
                failures.append(SendResult(recipient.send_id, None, "failed", problem.reason))
        if failures:
            log.warning("campaign %s: %d email(s) did not render", run.id, len(failures))
        return emails, failures

    def _email(self, run: _CampaignRun, r: _Recipient) -> OutgoingEmail:
        """Render one recipient's message and note every per-recipient value in it."""
        tokens, base = self._c.tokens, self._base
        unsubscribe = f"{base}/u/{tokens.sign('u', r.send_id)}"
        pixel = f"{base}/o/{tokens.sign('o', r.send_id)}.gif"
        name = r.name or ""
        first_name = name.split()[0] if name.split() else ""
        values = {"-ww_unsub-": unsubscribe, "-ww_pixel-": pixel, "-ww_name-": name}
        values["-ww_first-"] = first_name
        resources = []
        for i, resource in enumerate(run.resources):
            url = f"{base}/r/{tokens.sign('r', run.resource_links[resource.id], r.send_id)}"
            values[f"-ww_res{i}-"] = url
            resources.append(
                {"id": resource.id, "title": resource.title, "kind": resource.kind, "url": url}
            )
        tracked: dict[str, str] = {}

        def track(url: str) -> str:
            link_id = self._tracked_link(run, url)
            if link_id not in tracked:
                tracked[link_id] = f"{base}/r/{tokens.sign('r', link_id, r.send_id)}"
                values[f"-ww_trk{len(tracked) - 1}-"] = tracked[link_id]
            return tracked[link_id]

        context = {
            "contact": {"name": name, "first_name": first_name, "language": r.language or ""}
            | {"attributes": r.attributes},
            "campaign": {"id": run.id, "name": run.name},
            "resources": resources,
            "recommended": [],
            "messenger": None,
            "track": track,
            "unsubscribe_url": unsubscribe,
            "preferences_url": unsubscribe,
        }
        t = run.template
        out = self._c.renderer.render(t.subject, t.html, t.text, context)
        if not out.subject:
            raise TemplateProblem("subject: an email needs a non-empty subject")
        return OutgoingEmail(
            send_id=r.send_id,
            to_email=r.email,
            to_name=r.name or None,
            subject=out.subject,
            html=_with_pixel(out.html, pixel),
            text=out.text,
            headers=list_unsubscribe_headers(unsubscribe),
            custom_args={"ww_campaign": run.id, "ww_person": r.person, "ww_send": r.send_id},
            substitutions=values,
        )

    def _deliver(self, run: _CampaignRun, emails: list[OutgoingEmail]) -> tuple[int, int]:
        """Send with retries; record what settles. Returns (sent, left pending)."""
        pending, sent, transient, waits = emails, 0, 0, 0
        while pending:
            try:
                results = self._sender.send(pending)
            except RateLimited as exc:
                sent, pending = sent + self._record(run, exc.results), _unsettled(pending, exc)
                waits += 1
                if waits > self._max_waits:
                    return sent, len(pending)
                self._sleep(exc.retry_after_seconds)
                continue
            except TransientSendError as exc:
                sent, pending = sent + self._record(run, exc.results), _unsettled(pending, exc)
                transient += 1
                if transient > self._transient_retries:
                    log.warning("campaign %s: SendGrid unavailable: %s", run.id, exc)
                    return sent, len(pending)
                self._sleep(self._backoff * 2 ** (transient - 1))
                continue
            return sent + self._record(run, results), 0
        return sent, 0

    def _record(self, run: _CampaignRun, results: Sequence[SendResult]) -> int:
        """One transaction: mark sent/failed in bulk and enqueue one touch per sent email."""
        if not results:
            return 0
        sent_at = self._c.now().astimezone(UTC)
        sent = [r for r in results if r.status == "sent"]
        failed = [
            {"b_id": r.send_id, "b_status": "failed", "b_error": (r.error or "failed")[:2000]}
            for r in results
            if r.status != "sent"
        ]
        occurred_at = format_timestamp(sent_at)
        touches = [
            {
                "touch_id": f"send:{r.send_id}",
                "person": run.persons[r.send_id],
                "campaign_id": run.id,
                "channel": "email",
                "messenger_id": None,
                "kind": "email.sent",
                "occurred_at": occurred_at,
            }
            for r in sent
        ]
        with transaction(self._sessions) as session:
            if sent:
                marks = [
                    {"b_id": r.send_id, "b_message_id": r.message_id, "b_sent_at": sent_at}
                    for r in sent
                ]
                session.execute(_MARK_SENT, marks)
            if failed:
                session.execute(_MARK, failed)
            enqueue(session, topics.TOUCHES, touches)
        return len(sent)

    def _finish(self, campaign_id: str) -> None:
        """``sending`` → ``sent`` once no send of the campaign is pending."""
        with transaction(self._sessions) as session:
            pending = select(Send.id).where(
                Send.campaign_id == campaign_id, Send.status == "pending"
            )
            session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id, Campaign.status == "sending", ~pending.exists())
                .values(status="sent")
            )


def _blocked_reason(email: str | None, consent: str | None, suppressed: str | None) -> str | None:
    if suppressed is not None:
        return f"suppressed: {suppressed}"
    if consent != "confirmed":
        return f"consent: {consent}"
    if not email or not email.strip():
        return "no email address"
    return None


def _unsettled(pending: list[OutgoingEmail], exc: Exception) -> list[OutgoingEmail]:
    settled = {r.send_id for r in getattr(exc, "results", [])}
    return [e for e in pending if e.send_id not in settled]


def _with_pixel(html: str | None, pixel_url: str) -> str | None:
    """The open pixel, just before ``</body>`` (or at the end)."""
    if html is None:
        return None
    tag = f'<img src="{pixel_url}" width="1" height="1" alt="">'
    at = html.lower().rfind("</body>")
    return html + tag if at < 0 else html[:at] + tag + html[at:]
