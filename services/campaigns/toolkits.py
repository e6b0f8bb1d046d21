"""Trusted-messenger toolkits: per (campaign, messenger) a private page of ready-to-share
messages carrying that messenger's own tracked links, QR codes and a printable flyer.

Building is idempotent: one Toolkit row per (campaign, messenger) and one campaign-level
Link per (toolkit, resource) or ``track()`` URL, each created once (``channel="toolkit"``
and the messenger's id on the link, so a click is credited to campaign and messenger by
the ordinary pipeline). The messages are rendered from the campaign's toolkit template in
the sandbox when the toolkit is built and stored with it.

A toolkit template's text part holds the messages. Lines ``--- sms ---``,
``--- whatsapp ---``, ``--- email ---`` and ``--- social ---`` start a message of their
own; text before the first such line is used for every kind without its own section. The
subject is the email's subject (default: the campaign name); the HTML part, when there
is one, is the flyer's body (in a ZIP, its text only: see toolkit_pages). In the context ``contact`` is the messenger's unknown
reader (empty name), ``messenger`` is ``{id, name, role}``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from services.campaigns.toolkit_build import KINDS, ToolkitError, build_toolkit, split_messages
from services.db.models import Campaign, Messenger, Resource, Template
from services.db.models_toolkits import Toolkit, ToolkitLink
from services.db.session import transaction
from services.domain.lifecycle import ACTIVE, CampaignStatus

if TYPE_CHECKING:
    from services.application import Container

__all__ = [
    "KINDS",
    "ToolkitError",
    "ToolkitView",
    "build_due",
    "ensure_toolkits",
    "load_toolkit",
    "split_messages",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolkitLinkView:
    resource_id: str
    title: str
    kind: str
    url: str  # the messenger's tracked link: <public base>/r/<token>


@dataclass(frozen=True)
class ToolkitView:
    """Everything a page, a ZIP or the API needs about one built toolkit."""

    id: str
    token: str
    campaign_id: str
    campaign_name: str
    campaign_status: str
    messenger: dict[str, str]
    messages: dict[str, Any]
    links: list[ToolkitLinkView] = field(default_factory=list)


# --- building ----------------------------------------------------------------------------


def ensure_toolkits(
    container: Container,
    campaign_id: str,
    messenger_ids: Sequence[str] | None = None,
    *,
    refresh: bool = False,
) -> list[ToolkitView]:
    """Build (once) and return the toolkits of a campaign, in the campaign's messenger order.

    ``refresh`` renders the messages again even when they were rendered before.
    Messengers without a Messenger row are skipped with a warning.
    """
    with transaction(container.sessions) as session:
        campaign = _toolkit_campaign(session, campaign_id)
        wanted = [str(m) for m in campaign.messengers or []]
        if messenger_ids is not None:
            if unknown := [m for m in messenger_ids if m not in wanted]:
                raise ToolkitError(
                    f"messenger {unknown[0]!r} is not a messenger of campaign {campaign_id!r}"
                )
            wanted = [m for m in wanted if m in messenger_ids]
        found = {
            m.id: m for m in session.scalars(select(Messenger).where(Messenger.id.in_(wanted)))
        }
        if missing := [m for m in wanted if m not in found]:
            log.warning("campaign %s: unknown messenger(s) %s skipped", campaign_id, missing)
        template = session.get_one(Template, campaign.template_id)
        resources = _resources(session, campaign)
        ids = [
            build_toolkit(session, container, campaign, template, resources, found[m], refresh)
            for m in wanted
            if m in found
        ]
    return [view for view in (load_toolkit(container, i) for i in ids) if view is not None]


def _toolkit_campaign(session: Session, campaign_id: str) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise ToolkitError(f"unknown campaign {campaign_id!r}")
    if campaign.channel != "toolkit":
        raise ToolkitError(
            f"campaign {campaign_id!r} is not a toolkit campaign (channel {campaign.channel})"
        )
    return campaign


def _resources(session: Session, campaign: Campaign) -> list[Resource]:
    wanted = [str(r) for r in campaign.resources or []]
    found = {r.id: r for r in session.scalars(select(Resource).where(Resource.id.in_(wanted)))}
    return [found[r] for r in wanted if r in found]


# --- reading -----------------------------------------------------------------------------


def load_toolkit(container: Container, toolkit_id: str) -> ToolkitView | None:
    """One built toolkit with its campaign, messenger and resource links; None if unknown."""
    with container.sessions() as session:
        row = session.execute(
            select(Toolkit, Campaign.name, Campaign.status, Messenger.name, Messenger.role)
            .join(Campaign, Campaign.id == Toolkit.campaign_id)
            .outerjoin(Messenger, Messenger.id == Toolkit.messenger_id)
            .where(Toolkit.id == toolkit_id)
        ).first()
        if row is None:
            return None
        toolkit, campaign_name, status, m_name, m_role = row
        links = session.execute(
            select(ToolkitLink.resource_id, ToolkitLink.link_id, Resource.title, Resource.kind)
            .join(Resource, Resource.id == ToolkitLink.resource_id)
            .where(ToolkitLink.toolkit_id == toolkit_id)
            .order_by(ToolkitLink.position, ToolkitLink.key)
        ).all()
    base, sign = container.settings.public_base_url, container.tokens.sign
    return ToolkitView(
        id=toolkit.id,
        token=toolkit.token,
        campaign_id=toolkit.campaign_id,
        campaign_name=campaign_name,
        campaign_status=status,
        messenger={
            "id": toolkit.messenger_id,
            "name": m_name or toolkit.messenger_id,
            "role": m_role or "",
        },
        messages=toolkit.messages or {},
        links=[
            ToolkitLinkView(rid, title, kind, f"{base}/r/{sign('r', lid)}")
            for rid, lid, title, kind in links
            if rid is not None  # always: the join to Resource drops template links
        ],
    )


# --- the dispatcher's part ---------------------------------------------------------------


def build_due(container: Container, now: datetime | None = None) -> int:
    """Build the toolkits of due scheduled toolkit campaigns and mark them ``sent``.

    Returns the number of toolkits built. A campaign that fails stays ``sending`` and is
    tried again on the next call; a cancelled one is left alone.
    """
    now = (now or container.now()).astimezone(UTC)
    with container.sessions() as session:
        due = session.scalars(
            select(Campaign.id)
            .where(
                Campaign.channel == "toolkit",
                Campaign.status.in_(ACTIVE),
                or_(Campaign.send_at.is_(None), Campaign.send_at <= now),
            )
            .order_by(Campaign.created_at, Campaign.id)
        ).all()
    built = 0
    for campaign_id in due:
        try:
            built += _send(container, campaign_id)
        except Exception:  # noqa: BLE001 - one broken campaign must not block the others
            log.exception("toolkit campaign %s: build failed", campaign_id)
    return built


def _send(container: Container, campaign_id: str) -> int:
    def move(old: str, new: str) -> None:
        with transaction(container.sessions) as session:
            session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id, Campaign.status == old)
                .values(status=new)
            )

    move(CampaignStatus.SCHEDULED, CampaignStatus.SENDING)
    views = ensure_toolkits(container, campaign_id, refresh=True)
    move(CampaignStatus.SENDING, CampaignStatus.SENT)
    log.info("toolkit campaign %s: %d toolkit(s) built", campaign_id, len(views))
    return len(views)
