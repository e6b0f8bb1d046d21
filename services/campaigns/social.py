"""Social campaigns: one post per platform, rendered from the campaign's template,
checked against the platform's rules, and published through every configured
``SocialPublisher`` (services/campaigns/publishers.py).

* :func:`check_social_campaign` is the check at creation: every platform's post renders
  and fits (an X post over 280 characters, links counted 23, is refused with the reason).
* :func:`publish_due` is the dispatcher's step: a due ``scheduled`` social campaign is
  claimed (``sending``) and its posts and tracked links are written in one transaction;
  then each post goes to each publisher until it succeeds (at least once, retried with
  backoff; the post id is the idempotency key), and the campaign becomes ``sent``.

Tracked links are campaign-level (no contact): one Link per platform and destination,
channel ``social``, destination with ``utm_source=<platform>&utm_medium=social&
utm_campaign=<campaign id>``. A click arrives as a ``link.click`` with the campaign and
channel ``social`` and flows through the pipeline like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from services.campaigns.publishers import Post, PublishResult, SocialPublisher, make_publishers
from services.campaigns.rendering import TemplateProblem
from services.db.models import Campaign, Resource, Template
from services.db.models_social import SocialPost
from services.db.session import transaction
from services.domain.lifecycle import ACTIVE, CampaignStatus, PostStatus
from services.domain.social import (
    PLATFORMS,
    PostProblem,
    ShapedPost,
    delivery_due,
    next_delivery,
    shape_for_platform,
    with_utm,
)
from services.ids import new_id
from services.tracking.links import LinkError, check_destination, create_link

if TYPE_CHECKING:
    from services.application import Container

log = logging.getLogger(__name__)
NEUTRAL_CONTACT = {"name": "", "first_name": "", "language": "en", "attributes": {}}


@dataclass
class _Links:
    """Makes tracked links for one platform's post and remembers what each URL points to."""

    make: Callable[[str, str | None], str]  # (destination with UTM, resource id) -> tracked URL
    made: dict[str, dict[str, Any]] = field(default_factory=dict)
    _by_destination: dict[tuple[str, str | None], str] = field(default_factory=dict)

    def track(self, destination: str, resource_id: str | None = None) -> str:
        key = (destination, resource_id)
        if key not in self._by_destination:
            url = self.make(destination, resource_id)
            self._by_destination[key] = url
            self.made[url] = {"destination": destination, "resource_id": resource_id}
        return self._by_destination[key]


# --- creation-time check --------------------------------------------------------------


def check_social_campaign(container: Container, fields: Mapping[str, Any]) -> None:
    """Raise ValueError(reason) unless every platform's post renders and fits.

    ``fields`` are the campaign's (``channel``, ``name``, ``template_id``, ``resources``,
    ``platforms``; ``id`` optional). Other channels pass. No link is stored.
    """
    if fields.get("channel") != "social":
        return
    platforms = list(fields.get("platforms") or PLATFORMS)
    campaign = {"id": fields.get("id") or "draft", "name": fields.get("name") or ""}
    base = container.settings.public_base_url

    def placeholder(destination: str, resource_id: str | None) -> str:
        return f"{base}/r/{container.tokens.sign('r', new_id())}"

    with container.sessions() as session:
        template = session.get(Template, fields.get("template_id"))
        if template is None:
            raise ValueError(f"template_id: unknown template {fields.get('template_id')!r}")
        resources = _resources(session, fields.get("resources") or [])
        for platform in platforms:
            shape_post(container, template, campaign, resources, platform, _Links(placeholder))


# --- rendering ------------------------------------------------------------------------


def shape_post(
    container: Container,
    template: Template,
    campaign: Mapping[str, str],
    resources: Sequence[Resource],
    platform: str,
    links: _Links,
) -> tuple[ShapedPost, list[dict[str, Any]]]:
    """Render and shape one platform's post; ValueError(reason) if it cannot go out."""
    if platform not in PLATFORMS:
        raise ValueError(
            f"platforms: unknown platform {platform!r} (known: {', '.join(PLATFORMS)})"
        )

    def utm(url: str) -> str:
        return with_utm(check_destination(url, container.settings), platform, campaign["id"])

    def track(url: str) -> str:
        if not isinstance(url, str):
            raise ValueError(f"track() needs an absolute http(s) URL, got {url!r}")
        return links.track(utm(url))

    try:
        items = [
            {"id": r.id, "title": r.title, "kind": r.kind, "url": links.track(utm(r.url), r.id)}
            for r in resources
        ]
        context = {
            "platform": platform,
            "campaign": dict(campaign),
            "resources": items,
            "recommended": [],
            "contact": NEUTRAL_CONTACT,
            "messenger": None,
            "track": track,
            "unsubscribe_url": "",
            "preferences_url": "",
        }
        text = container.renderer.render(None, None, template.text, context).text
        shaped = shape_for_platform(platform, text)
    except (TemplateProblem, LinkError) as exc:
        raise ValueError(f"{platform}: the post does not render: {exc}") from None
    except PostProblem as exc:
        raise ValueError(str(exc)) from None
    return shaped, _link_records(shaped, links)


def _link_records(shaped: ShapedPost, links: _Links) -> list[dict[str, Any]]:
    records = []
    for placement, urls in (("post", shaped.inline_links), ("bio", shaped.bio_links)):
        for url in urls:
            known = links.made.get(url)
            records.append(
                {
                    "url": url,
                    "destination": known["destination"] if known else url,
                    "resource_id": known["resource_id"] if known else None,
                    "tracked": known is not None,
                    "placement": placement,
                }
            )
    return records


def _resources(session: Session, ids: Sequence[str]) -> list[Resource]:
    found = {r.id: r for r in session.scalars(select(Resource).where(Resource.id.in_(list(ids))))}
    if missing := [i for i in ids if i not in found]:
        raise ValueError(f"resources: unknown resource ids {missing}")
    return [found[i] for i in ids]


# --- publishing -----------------------------------------------------------------------


def publish_due(
    container: Container, now: datetime, publishers: Sequence[SocialPublisher] | None = None
) -> int:
    """Publish every due social campaign as far as possible; return the deliveries made.

    Safe to call repeatedly and from several processes: claiming is atomic, posts are
    unique per (campaign, platform), and a delivery is only retried until it succeeds.
    """
    now = now.astimezone(UTC)
    publishers = publishers if publishers is not None else _publishers(container)
    done = 0
    with container.sessions() as session:
        due = session.execute(
            select(Campaign.id, Campaign.status)
            .where(
                Campaign.channel == "social",
                Campaign.status.in_(ACTIVE),
                (Campaign.send_at.is_(None)) | (Campaign.send_at <= now),
            )
            .order_by(Campaign.created_at, Campaign.id)
        ).all()
    for campaign_id, status in due:
        try:
            if status == CampaignStatus.SCHEDULED and not _start(container, campaign_id, now):
                continue
            done += _deliver(container, campaign_id, publishers, now)
            _finish(container, campaign_id, publishers)
        except Exception:  # noqa: BLE001 - one broken campaign must not block the others
            log.exception("social campaign %s: publishing failed", campaign_id)
    return done


def _publishers(container: Container) -> list[SocialPublisher]:
    if container.social_publishers is None:
        container.social_publishers = make_publishers(container)
    return container.social_publishers


def _start(container: Container, campaign_id: str, now: datetime) -> bool:
    """``scheduled`` → ``sending`` with its posts and tracked links, in one transaction."""
    with transaction(container.sessions) as session:
        claim = update(Campaign).where(
            Campaign.id == campaign_id, Campaign.status == CampaignStatus.SCHEDULED
        )
        claimed = cast(
            CursorResult[Any], session.execute(claim.values(status=CampaignStatus.SENDING))
        )
        if claimed.rowcount != 1:
            return False  # another dispatcher got there first
        campaign = session.get_one(Campaign, campaign_id)
        template = session.get_one(Template, campaign.template_id)
        resources = _resources(session, campaign.resources or [])
        ref = {"id": campaign.id, "name": campaign.name}
        for platform in campaign.platforms or PLATFORMS:
            session.add(_new_post(container, session, campaign, template, ref, resources, platform))
    log.info(
        "social campaign %s: %d post(s) rendered", campaign_id, len(campaign.platforms or PLATFORMS)
    )
    return True


def _new_post(
    container: Container,
    session: Session,
    campaign: Campaign,
    template: Template,
    ref: dict[str, str],
    resources: Sequence[Resource],
    platform: str,
) -> SocialPost:
    def make(destination: str, resource_id: str | None) -> str:
        link = create_link(
            session,
            container.settings,
            destination,
            campaign_id=campaign.id,
            channel="social",
            resource_id=resource_id,
        )
        return f"{container.settings.public_base_url}/r/{container.tokens.sign('r', link.id)}"

    post = SocialPost(
        id=new_id(),
        campaign_id=campaign.id,
        platform=platform,
        scheduled_at=campaign.send_at,
        results={},
        links=[],
        text="",
        status=PostStatus.PENDING,
    )
    try:
        shaped, post.links = shape_post(container, template, ref, resources, platform, _Links(make))
        post.text = shaped.text
    except (
        ValueError
    ) as exc:  # e.g. a resource edited since creation: keep the reason, publish nothing
        post.status, post.error = PostStatus.REFUSED, str(exc)
        log.warning("social campaign %s: %s", campaign.id, exc)
    return post


def _deliver(
    container: Container, campaign_id: str, publishers: Sequence[SocialPublisher], now: datetime
) -> int:
    with container.sessions() as session:
        posts = session.scalars(
            select(SocialPost).where(
                SocialPost.campaign_id == campaign_id, SocialPost.status != PostStatus.REFUSED
            )
        ).all()
    done = 0
    for row in posts:
        post = Post(
            row.id, row.campaign_id, row.platform, row.text, list(row.links), row.scheduled_at
        )
        for publisher in publishers:
            record = (row.results or {}).get(publisher.name) or {}
            if not delivery_due(record, now):
                continue
            try:
                result = publisher.publish(post, now)
            except Exception as exc:  # noqa: BLE001 - an adapter bug must not stop the others
                log.exception("publisher %s failed on post %s", publisher.name, row.id)
                result = PublishResult(False, f"{type(exc).__name__}: {exc}")
            _remember(
                container,
                row.id,
                publisher.name,
                next_delivery(record, result.ok, result.retry, result.detail, now),
            )
            done += result.ok
    return done


def _remember(container: Container, post_id: str, name: str, record: dict[str, Any]) -> None:
    with transaction(container.sessions) as session:
        row = session.get_one(SocialPost, post_id, with_for_update=True)
        row.results = {**(row.results or {}), name: record}


def _finish(container: Container, campaign_id: str, publishers: Sequence[SocialPublisher]) -> None:
    """``sending`` → ``sent`` once every post is settled with every publisher."""
    with transaction(container.sessions) as session:
        posts = session.scalars(
            select(SocialPost).where(
                SocialPost.campaign_id == campaign_id, SocialPost.status != PostStatus.REFUSED
            )
        ).all()
        settled = all(
            (p.results or {}).get(x.name, {}).get("final") for p in posts for x in publishers
        )
        if settled:
            session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.SENDING)
                .values(status=CampaignStatus.SENT)
            )
            log.info("social campaign %s: published", campaign_id)
