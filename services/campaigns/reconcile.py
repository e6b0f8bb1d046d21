"""After a crash: which emails of an unfinished request did the provider accept?

The dispatcher writes each send to ``inflight_sends`` (with a batch id) before the
request that carries it, and every personalization carries ``custom_args.ww_batch``.
A send still in flight after a restart may or may not have reached SendGrid; this
module asks:

* SendGrid: the Email Activity API, ``GET /v3/messages?query=unique_args['ww_batch']="<id>"``
  (one query per batch, ``limit=1000`` = the batch size). The listing has no custom args,
  so messages map back to sends by ``to_email`` within the batch. The API is an add-on
  (403/404 without it) limited to 6 requests a minute, and a message appears there after
  a short delay: hence ``WINWIN_SENDGRID_RECONCILE_AFTER_SECONDS`` before asking.
* The local outbox: its rows are keyed by send id.

:class:`ActivityBusy` means "ask again later"; :class:`ActivityUnavailable` means the
provider cannot tell, and the dispatcher then never resends (no duplicates).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import func, select

from services.campaigns.channels.email import SendResult
from services.db.models import Contact, LocalEmail, Send
from services.db.models_consent import InflightSend
from services.domain.lifecycle import SendStatus

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from services.application import Container

__all__ = [
    "Activity",
    "ActivityBusy",
    "ActivityUnavailable",
    "LocalOutboxActivity",
    "Reconciler",
    "SendGridActivity",
    "match_by_address",
]


log = logging.getLogger(__name__)
UNCERTAIN = (
    "uncertain: the dispatcher stopped while SendGrid had this email and SendGrid cannot "
    "say whether it accepted it; not sent again, so that nobody gets it twice"
)


class ActivityBusy(Exception):
    """The provider did not answer now (429, 5xx, network): try again later."""


class ActivityUnavailable(Exception):
    """The provider cannot tell which emails it accepted (e.g. no Email Activity access)."""


class Activity(Protocol):
    """Port: ``{send_id: message_id or None}`` of the accepted sends of a batch."""

    def accepted(
        self, batch_id: str, sends: Sequence[tuple[str, str]]
    ) -> dict[str, str | None]: ...


def match_by_address(
    sends: Sequence[tuple[str, str]], messages: Sequence[tuple[str, str | None]]
) -> dict[str, str | None]:
    """Map provider messages ``(to_email, msg_id)`` to ``sends`` ``(send_id, address)``.

    Two sends of a batch to one address (two contacts sharing it) take the provider's
    messages to that address in turn: the count of accepted emails stays exact.
    """
    by_address: dict[str, list[str | None]] = defaultdict(list)
    for to, message_id in messages:
        by_address[to.strip().lower()].append(message_id)
    accepted: dict[str, str | None] = {}
    for send_id, address in sends:
        found = by_address.get((address or "").strip().lower())
        if found:
            accepted[send_id] = found.pop(0)
    return accepted


class SendGridActivity:
    """SendGrid's Email Activity API over plain HTTPS (read-only; no client library)."""

    def __init__(self, api_key: str, host: str, timeout: float = 30.0) -> None:
        self._key = api_key
        self._host = host.rstrip("/")
        self._timeout = timeout

    def accepted(self, batch_id: str, sends: Sequence[tuple[str, str]]) -> dict[str, str | None]:
        query = f"unique_args['ww_batch']=\"{batch_id}\""
        url = f"{self._host}/v3/messages?" + urllib.parse.urlencode(
            {"limit": "1000", "query": query}
        )
        body = self._get(url)
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list):
            raise ActivityBusy("Email Activity answered without a messages list")
        found = [
            (str(m.get("to_email", "")), _message_id(m.get("msg_id")))
            for m in messages
            if isinstance(m, dict)
        ]
        return match_by_address(sends, found)

    def _get(self, url: str) -> Any:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self._key}"})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403, 404):
                raise ActivityUnavailable(f"Email Activity API: HTTP {exc.code}") from None
            raise ActivityBusy(f"Email Activity API: HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:
            raise ActivityBusy(f"Email Activity API: {exc}") from None


def _message_id(msg_id: Any) -> str | None:
    """SendGrid's activity ``msg_id`` starts with the X-Message-Id of the request."""
    return str(msg_id).split(".")[0] if msg_id else None


class LocalOutboxActivity:
    """The local outbox keeps one row per send id: what is there was accepted."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def accepted(self, batch_id: str, sends: Sequence[tuple[str, str]]) -> dict[str, str | None]:
        ids = [send_id for send_id, _ in sends]
        with self._sessions() as session:
            stored = set(
                session.scalars(select(LocalEmail.send_id).where(LocalEmail.send_id.in_(ids)))
            )
        return {send_id: f"local-{send_id}" for send_id in ids if send_id in stored}


class Reconciler:
    """Settles a campaign's batches left in flight by an earlier run of the dispatcher."""

    def __init__(self, container: Container, activity: Activity, after: timedelta) -> None:
        self._c, self._sessions = container, container.sessions
        self._activity, self._after = activity, after

    def settle(
        self,
        run: Any,
        record: Callable[[Any, Sequence[SendResult]], int],
        release: Callable[[list[str]], None],
    ) -> tuple[int, int]:
        """Accepted sends → ``record`` (sent, with touches); the rest → ``release`` (sent
        again later). Returns (sent, batches still unsure). Batches younger than
        ``after`` wait: the provider may not list them yet."""
        with self._sessions() as session:
            batches = session.execute(
                select(InflightSend.batch_id, func.min(InflightSend.created_at))
                .where(InflightSend.campaign_id == run.id)
                .group_by(InflightSend.batch_id)
            ).all()
        cutoff = self._c.now().astimezone(UTC) - self._after
        sent, unsure = 0, 0
        for batch_id, created_at in batches:
            created = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
            if created > cutoff:
                unsure += 1
                continue
            try:
                sent += self._settle_batch(run, batch_id, record, release)
            except ActivityBusy as exc:
                log.warning("campaign %s: batch %s not reconciled yet: %s", run.id, batch_id, exc)
                unsure += 1
        return sent, unsure

    def _settle_batch(self, run: Any, batch_id: str, record: Any, release: Any) -> int:
        with self._sessions() as session:
            rows = session.execute(
                select(InflightSend.send_id, Send.person, Contact.email)
                .join(Send, Send.id == InflightSend.send_id)
                .join(Contact, Contact.id == Send.contact_id)
                .where(InflightSend.batch_id == batch_id)
            ).all()
        for row in rows:
            run.persons[row.send_id] = row.person
        sends = [(row.send_id, row.email or "") for row in rows]
        try:
            accepted = self._activity.accepted(batch_id, sends)
        except ActivityUnavailable as exc:
            log.error(
                "campaign %s: batch %s: %s; %d marked failed", run.id, batch_id, exc, len(sends)
            )
            return int(
                record(run, [SendResult(i, None, SendStatus.FAILED, UNCERTAIN) for i, _ in sends])
            )
        sent = int(
            record(
                run,
                [SendResult(i, accepted[i], SendStatus.SENT) for i, _ in sends if i in accepted],
            )
        )
        release([i for i, _ in sends if i not in accepted])
        log.warning(
            "campaign %s: batch %s reconciled: %d accepted by the provider, %d to send again",
            run.id, batch_id, sent, len(sends) - sent,
        )  # fmt: skip
        return sent
