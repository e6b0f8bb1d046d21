"""The email dispatcher: due campaigns → one Send row per recipient → rendered emails.

``Dispatcher.dispatch_due(now)`` claims email campaigns whose time has come
(``scheduled`` → ``sending``), materialises their Send rows once (unique per
(campaign, contact): nobody gets a campaign twice), then sends the pending ones in
batches of at most ``batch_size``. Every batch costs a fixed number of SQL statements,
whatever its size: one query loads the batch together with each contact's current
consent and suppression (so an unsubscribe between two batches is honoured) and, in the
same transaction, marks the suppressed and claims the rest as *in flight*; one
transaction then marks the results and enqueues the touches (``winwin.touches.v1``)
through the transactional outbox. A ``paused`` or ``cancelled`` campaign stops between
batches; ``WINWIN_EMAIL_MAX_PER_SECOND`` paces the requests; SendGrid's 429s wait out
the rate-limit headers.

Crash safety (exactly once)
---------------------------
Each send of a batch is written to ``inflight_sends`` with a batch id *before* the
request, and the batch id travels in every personalization's ``custom_args.ww_batch``.
A send leaves ``inflight_sends`` in the transaction that records its outcome. So:

* killed before the request, or after SendGrid refused it: nothing was accepted;
* killed between SendGrid's 202 and the commit: SendGrid has it, SQL does not know yet;

and a restart cannot tell the two apart from SQL alone. It asks the provider
(reconcile.py: SendGrid's Email Activity by ``ww_batch``, or the local outbox), marks
what was accepted as sent (with its touch), and only then puts the rest back to be
sent. Sends in flight are never picked for a new batch. A timeout or reset during a
request (SendGrid may have accepted it) is handled the same way, never by a blind
retry. When the provider cannot tell (no Email Activity access), those sends are marked
``failed`` with the reason rather than risking a second copy.

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
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, and_, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from services.bus import topics
from services.bus.outbox import enqueue
from services.campaigns import content_tests, eligibility
from services.campaigns.channels.email import (
    EmailSender,
    LocalOutboxSender,
    OutgoingEmail,
    RateLimited,
    SendGridEmailSender,
    SendResult,
    TransientSendError,
)
from services.campaigns.confirmations import send_confirmations
from services.campaigns.outbox_store import SqlOutboxStore
from services.campaigns.personalise import CampaignRun, Personaliser, Recipient
from services.campaigns.reconcile import (
    UNCERTAIN,
    Activity,
    LocalOutboxActivity,
    Reconciler,
    SendGridActivity,
)
from services.campaigns.schedule import claim_due, finish, prepare
from services.db.models import Campaign, Contact, Send, Suppression
from services.db.models_consent import GroupUnsubscribe, InflightSend
from services.db.repositories import send_progress
from services.db.session import transaction
from services.db.upsert import insert_new
from services.domain.events import format_timestamp
from services.domain.lifecycle import CampaignStatus, SendStatus
from services.domain.needs import Recommendation
from services.domain.unsubscribe_groups import blocked_reason
from services.experiments.assign import held_out
from services.ids import new_id

if TYPE_CHECKING:
    from services.application import Container

__all__ = ["UNCERTAIN", "Dispatcher", "make_activity", "make_sender", "progress"]

log = logging.getLogger(__name__)

_SENDS = cast(Table, Send.__table__)
_INFLIGHT = cast(Table, InflightSend.__table__)
_MARK_SENT = (
    update(_SENDS)
    .where(_SENDS.c.id == bindparam("b_id"), _SENDS.c.status == SendStatus.PENDING)
    .values(
        status=SendStatus.SENT, message_id=bindparam("b_message_id"), sent_at=bindparam("b_sent_at")
    )
)
#: The contact left the campaign's unsubscribe group (never true for a campaign without).
_LEFT_THE_GROUP = and_(
    GroupUnsubscribe.contact_id == Contact.id,
    GroupUnsubscribe.group_id == Campaign.unsubscribe_group,
    GroupUnsubscribe.unsubscribed.is_(True),
)
_MARK = (
    update(_SENDS)
    .where(_SENDS.c.id == bindparam("b_id"), _SENDS.c.status == SendStatus.PENDING)
    .values(status=bindparam("b_status"), error=bindparam("b_error"))
)


def make_sender(container: Container) -> EmailSender:
    """The sender given to bootstrap, else SendGrid when a key is set, else the local
    outbox (CONTRACT.md, Configuration)."""
    if container.email_sender is not None:
        return container.email_sender
    settings = container.settings
    if settings.sendgrid_enabled:
        return SendGridEmailSender(
            settings.sendgrid_api_key.get_secret_value(),
            settings.sendgrid_from,
            settings.sendgrid_api_host,
        )
    return LocalOutboxSender(SqlOutboxStore(container.sessions))


def make_activity(container: Container, sender: EmailSender) -> Activity:
    """Where to ask what was accepted: the local outbox, or SendGrid's Email Activity."""
    settings = container.settings
    if isinstance(sender, LocalOutboxSender) or not settings.sendgrid_enabled:
        return LocalOutboxActivity(container.sessions)
    return SendGridActivity(
        settings.sendgrid_api_key.get_secret_value(), settings.sendgrid_api_host
    )


def progress(session: Session, campaign_id: str) -> dict[str, int]:
    """``{"total", "sent", "suppressed", "failed"}`` of a campaign (pending count in total)."""
    return send_progress(session, campaign_id)


class Dispatcher:
    """Sends due email campaigns through an :class:`EmailSender` (see the module doc).

    ``sleep`` and ``clock`` are injectable so tests do not wait out rate limits;
    transient failures (5xx) are retried ``transient_retries`` times with exponential
    backoff from ``backoff_seconds``, then left pending for the next run. ``max_rate``
    (emails a second, default ``WINWIN_EMAIL_MAX_PER_SECOND``, 0 = no limit) paces the
    requests; ``reconcile_after`` (seconds, default
    ``WINWIN_SENDGRID_RECONCILE_AFTER_SECONDS``) is how old an in-flight batch must be
    before the provider is asked about it.
    """

    def __init__(
        self,
        container: Container,
        sender: EmailSender,
        batch_size: int = 1000,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        transient_retries: int = 3,
        backoff_seconds: float = 1.0,
        max_rate_limit_waits: int = 100,
        max_rate: float | None = None,
        activity: Activity | None = None,
        reconcile_after: float | None = None,
    ) -> None:
        if not 1 <= batch_size <= 1000:
            raise ValueError("batch_size must be between 1 and 1000")
        settings = container.settings
        self._c = container
        self._sessions = container.sessions
        self._sender = sender
        self.batch_size = batch_size
        self._sleep, self._clock = sleep, clock
        self._transient_retries = transient_retries
        self._backoff = backoff_seconds
        self._max_waits = max_rate_limit_waits
        self._max_rate = settings.email_max_per_second if max_rate is None else max_rate
        self._next_slot = 0.0
        after = (
            settings.sendgrid_reconcile_after_seconds
            if reconcile_after is None
            else reconcile_after
        )
        self._reconciler = Reconciler(
            container, activity or make_activity(container, sender), timedelta(seconds=after)
        )
        self._personaliser = Personaliser(container)
        self._content: dict[str, content_tests.ContentRun | None] = {}  # campaign → its test

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
        send_confirmations(self._c, self._sender)  # double opt-in requests (issue 18)
        for campaign_id in claim_due(self._sessions, now):
            try:
                sent += self._send_campaign(campaign_id)
            except Exception:  # noqa: BLE001 - one broken campaign must not block the others
                log.exception("campaign %s: dispatch failed", campaign_id)
        return sent

    # -- sending ------------------------------------------------------------------------

    def _send_campaign(self, campaign_id: str) -> int:
        run = prepare(self._sessions, campaign_id, self._personaliser)
        if run is None:
            return 0
        self._content[run.id] = content_tests.start(self._c, run, self._c.now().astimezone(UTC))
        sent, unsure = self._reconciler.settle(run, self._record, self._release_ids)
        allowance = self._allowance(run)  # None: no hourly cap
        cursor = ""
        while True:
            if allowance is not None and allowance <= 0:
                log.info("campaign %s: its %d an hour are sent; more next hour", run.id,
                         run.throttle_per_hour)  # fmt: skip
                return sent  # still sending: the next dispatcher tick goes on
            batch_id = new_id()
            recipients, cursor, fetched = self._next_batch(run, cursor, batch_id, allowance)
            if not fetched:
                break
            emails, failures = self._render(run, recipients, batch_id)
            if failures:
                self._record(run, failures)
            delivered, deferred = self._deliver(run, emails)
            sent += delivered
            if allowance is not None:
                allowance -= delivered
            if deferred:
                log.warning("campaign %s: %d send(s) left for the next run", run.id, deferred)
                return sent
        if not unsure and not content_tests.undecided(self._content.get(run.id)):
            finish(self._sessions, run.id)
        return sent

    def _allowance(self, run: CampaignRun) -> int | None:
        """How many more of the campaign's emails may go this hour (its throttle less
        those sent in the last 60 minutes); None without a throttle."""
        if not run.throttle_per_hour:
            return None
        since = self._c.now().astimezone(UTC) - timedelta(hours=1)
        with self._sessions() as session:
            recent = session.scalar(
                select(func.count())
                .select_from(Send)
                .where(Send.campaign_id == run.id, Send.sent_at >= since)
            )
        return max(0, run.throttle_per_hour - (recent or 0))

    def _next_batch(
        self, run: CampaignRun, cursor: str, batch_id: str, allowance: int | None = None
    ) -> tuple[list[Recipient], str, int]:
        """The next pending sends after ``cursor``, consent, suppression and the campaign's
        unsubscribe group re-checked in the same query; the ones no longer allowed are marked ``suppressed`` and the rest
        claimed as in flight (``batch_id``), in the same transaction.

        Joining the campaign's status makes a paused or cancelled campaign stop here.
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
                GroupUnsubscribe.group_id.label("left_group"),
            )
            .join(Contact, Contact.id == Send.contact_id)
            .join(
                Campaign,
                and_(Campaign.id == Send.campaign_id, Campaign.status == CampaignStatus.SENDING),
            )
            .outerjoin(Suppression, Suppression.email_normalized == normalized)
            .outerjoin(GroupUnsubscribe, _LEFT_THE_GROUP)
            .outerjoin(InflightSend, InflightSend.send_id == Send.id)
            .where(Send.campaign_id == run.id, Send.status == SendStatus.PENDING, Send.id > cursor)
            .where(InflightSend.send_id.is_(None))
            .order_by(Send.id)
            .limit(self.batch_size if allowance is None else min(self.batch_size, allowance))
        )
        with transaction(self._sessions) as session:
            rows = session.execute(stmt).all()
            allowed, blocked = [], []
            for row in rows:
                reason = blocked_reason(row.email, row.email_consent, row.reason, row.left_group)
                if reason:
                    blocked.append(
                        {"b_id": row.id, "b_status": SendStatus.SUPPRESSED, "b_error": reason}
                    )
                else:
                    allowed.append(row)
            allowed, blocked = eligibility.screen(session, run.id, allowed, blocked,
                                                  self._c.now(), self._c.settings.timezone)  # fmt: skip
            if blocked:
                session.execute(_MARK, blocked)
            allowed = self._hold_out(session, run, allowed)
            allowed = content_tests.admit(session, self._c, run, self._content.get(run.id),
                                          allowed, self._c.now().astimezone(UTC))  # fmt: skip
            claimed = self._claim(session, run, batch_id, [row.id for row in allowed])
        mine = [row for row in allowed if row.id in claimed]  # another dispatcher may hold the rest
        uses = run.mentions("recommended")  # else three queries a batch for nothing
        recommended = self._recommended([row.person for row in mine]) if uses else {}
        recipients = []
        for row in mine:
            run.persons[row.id] = row.person
            recipients.append(
                Recipient(
                    row.id,
                    row.person,
                    row.email,
                    row.name,
                    row.language,
                    row.attributes or {},
                    tuple(recommended.get(row.person, ())),
                )
            )
        return recipients, (rows[-1].id if rows else cursor), len(rows)

    def _hold_out(self, session: Session, run: CampaignRun, allowed: list[Any]) -> list[Any]:
        """Assign the eligible to the holdout (if any); controls are marked ``held_out``."""
        now = self._c.now().astimezone(UTC)
        persons = [row.person for row in allowed]
        held = held_out(session, self._c.settings, "campaign", run.id, persons, now)
        if held:
            marks = [{"b_id": row.id, "b_status": SendStatus.HELD_OUT, "b_error": None}
                     for row in allowed if row.person in held]  # fmt: skip
            session.execute(_MARK, marks)
        return [row for row in allowed if row.person not in held]

    def _recommended(self, persons: list[str]) -> dict[str, list[Recommendation]]:
        """Templates get ``recommended``: one look-up per batch (three queries)."""
        if not persons:
            return {}
        with self._sessions() as session:
            return self._c.recommend(session, persons, limit=3)

    def _claim(self, session: Session, run: CampaignRun, batch_id: str, ids: list[str]) -> set[str]:
        at = self._c.now().astimezone(UTC)
        rows = [
            {"send_id": i, "batch_id": batch_id, "campaign_id": run.id, "created_at": at}
            for i in ids
        ]
        return insert_new(session, _INFLIGHT, rows, "send_id")

    def _render(
        self, run: CampaignRun, recipients: Sequence[Recipient], batch_id: str
    ) -> tuple[list[OutgoingEmail], list[SendResult]]:
        content = self._content.get(run.id)  # a content test: each recipient's variant
        emails, failed = content_tests.emails(
            self._personaliser, run, content, recipients, batch_id
        )
        failures = [SendResult(r.send_id, None, SendStatus.FAILED, reason) for r, reason in failed]
        if failures:
            log.warning("campaign %s: %d email(s) did not render", run.id, len(failures))
        return emails, failures

    def _deliver(self, run: CampaignRun, emails: list[OutgoingEmail]) -> tuple[int, int]:
        """Send with retries; record what settles. Returns (sent, left pending)."""
        pending, sent, transient, waits = emails, 0, 0, 0
        while pending:
            self._pace(len(pending))
            try:
                results = self._sender.send(pending)
            except RateLimited as exc:  # nothing of `pending` beyond exc.results was accepted
                sent, pending = sent + self._record(run, exc.results), _unsettled(pending, exc)
                waits += 1
                if waits > self._max_waits:
                    return sent, self._release(pending)
                self._sleep(exc.retry_after_seconds)
                continue
            except TransientSendError as exc:
                sent, pending = sent + self._record(run, exc.results), _unsettled(pending, exc)
                if exc.__cause__ is not None:  # timeout or reset: SendGrid may have it
                    log.warning("campaign %s: %s; left in flight to reconcile", run.id, exc)
                    return sent, len(pending)
                transient += 1
                if transient > self._transient_retries:
                    log.warning("campaign %s: SendGrid unavailable: %s", run.id, exc)
                    return sent, self._release(pending)
                self._sleep(self._backoff * 2 ** (transient - 1))
                continue
            return sent + self._record(run, results), 0
        return sent, 0

    def _pace(self, n: int) -> None:
        """Throttle: requests spaced so that at most ``max_rate`` emails go a second."""
        if self._max_rate <= 0:
            return
        now = self._clock()
        if self._next_slot > now:
            self._sleep(self._next_slot - now)
            now = self._next_slot
        self._next_slot = max(now, self._next_slot) + n / self._max_rate

    def _release(self, emails: Sequence[OutgoingEmail]) -> int:
        """Back to plain pending: the provider refused these (429/5xx), it has none."""
        self._release_ids([e.send_id for e in emails])
        return len(emails)

    def _record(self, run: CampaignRun, results: Sequence[SendResult]) -> int:
        """One transaction: mark sent/failed in bulk, settle them (no longer in flight),
        and enqueue one touch per sent email."""
        if not results:
            return 0
        sent_at = self._c.now().astimezone(UTC)
        sent = [r for r in results if r.status == SendStatus.SENT]
        failed = [
            {
                "b_id": r.send_id,
                "b_status": SendStatus.FAILED,
                "b_error": (r.error or "failed")[:2000],
            }
            for r in results
            if r.status != SendStatus.SENT
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
            settled = [r.send_id for r in results]
            session.execute(delete(InflightSend).where(InflightSend.send_id.in_(settled)))
            enqueue(session, topics.TOUCHES, touches)
        return len(sent)

    def _release_ids(self, ids: list[str]) -> None:
        if ids:
            with transaction(self._sessions) as session:
                session.execute(delete(InflightSend).where(InflightSend.send_id.in_(ids)))


def _unsettled(pending: list[OutgoingEmail], exc: Exception) -> list[OutgoingEmail]:
    settled = {r.send_id for r in getattr(exc, "results", [])}
    return [e for e in pending if e.send_id not in settled]
