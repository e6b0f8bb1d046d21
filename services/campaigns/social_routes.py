"""Social channel HTTP: a campaign's posts, the public feeds, platform-reported reach.

* ``GET /api/v1/campaigns/{id}/posts`` → the campaign's posts (once rendered at publish time).
* ``GET /feeds/social.atom`` and ``GET /feeds/social.json`` (JSON Feed 1.1): published
  posts, newest first, for scheduling tools; ``?platform=x`` narrows to one platform.
* ``POST /api/v1/campaigns/{id}/reach``: impressions and reach reported by a platform,
  per day (an object or an array of up to 1000); a later report for the same
  (platform, date) replaces the earlier one. ``GET`` answers totals per platform and days.
  Reach is campaign-level exposure reported by platforms: it is never counted as people.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, cast
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Body, HTTPException, Query, Response
from pydantic import Field
from sqlalchemy import Table, func, select

from services.auth import Authorized
from services.bootstrap import AppDep, Container
from services.db.models import Campaign
from services.db.models_social import CampaignReach, SocialPost
from services.db.upsert import upsert
from services.domain.social import LABELS, PLATFORMS
from services.json_bodies import JSONBodyRoute
from services.staff_input import StaffInput

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

router = APIRouter(route_class=JSONBodyRoute, tags=["social"])
FEED_LIMIT = 50
ATOM = "http://www.w3.org/2005/Atom"


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()


def _social_campaign(session: Session, campaign_id: str) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise HTTPException(404, "campaign not found")
    if campaign.channel != "social":
        raise HTTPException(
            422, f"campaign_id: a {campaign.channel} campaign has no social posts or reach"
        )
    return campaign


# --- posts ----------------------------------------------------------------------------


@router.get("/api/v1/campaigns/{campaign_id}/posts")
def get_posts(campaign_id: str, c: AppDep, _: Authorized) -> list[dict[str, Any]]:
    """The campaign's posts, one per platform (empty until the campaign is due)."""
    with c.sessions() as session:
        _social_campaign(session, campaign_id)
        rows = session.scalars(
            select(SocialPost).where(SocialPost.campaign_id == campaign_id)
        ).all()
    order = {p: i for i, p in enumerate(PLATFORMS)}
    return [
        {
            "platform": p.platform,
            "text": p.text,
            "links": p.links,
            "scheduled_at": _iso(p.scheduled_at),
            "published_at": _iso(p.published_at),
            "id": p.id,
            "status": p.status,
            "error": p.error,
            "deliveries": p.results or {},
        }
        for p in sorted(rows, key=lambda p: order.get(p.platform, 99))
    ]


# --- feeds ----------------------------------------------------------------------------


def _published(c: Container, platform: str | None, limit: int) -> list[SocialPost]:
    if platform is not None and platform not in PLATFORMS:
        raise HTTPException(422, f"platform: one of {', '.join(PLATFORMS)}")
    query = select(SocialPost).where(SocialPost.published_at.is_not(None))
    if platform:
        query = query.where(SocialPost.platform == platform)
    with c.sessions() as session:
        return list(
            session.scalars(
                query.order_by(SocialPost.published_at.desc(), SocialPost.id).limit(limit)
            )
        )


def _title(post: SocialPost) -> str:
    first = post.text.strip().splitlines()[0] if post.text.strip() else ""
    return (
        f"{LABELS.get(post.platform, post.platform)}: {first[:80]}{'…' if len(first) > 80 else ''}"
    )


@router.get("/feeds/social.atom", tags=["public"])
def atom_feed(
    c: AppDep, platform: str | None = None, limit: int = Query(FEED_LIMIT, ge=1, le=500)
) -> Response:
    """Published posts as an Atom 1.0 feed."""
    posts = _published(c, platform, limit)
    base = c.settings.public_base_url
    self_url = f"{base}/feeds/social.atom" + (f"?platform={platform}" if platform else "")
    feed = ET.Element("feed", xmlns=ATOM)
    ET.SubElement(feed, "id").text = self_url
    ET.SubElement(feed, "title").text = "WINWIN social posts" + (
        f" ({LABELS[platform]})" if platform else ""
    )
    ET.SubElement(feed, "updated").text = (
        _iso(posts[0].published_at) if posts else "1970-01-01T00:00:00+00:00"
    )
    ET.SubElement(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    ET.SubElement(ET.SubElement(feed, "author"), "name").text = "WINWIN"
    for post in posts:
        entry = ET.SubElement(feed, "entry")
        ET.SubElement(entry, "id").text = f"urn:winwin:social-post:{post.id}"
        ET.SubElement(entry, "title").text = _title(post)
        ET.SubElement(entry, "published").text = _iso(post.published_at)
        ET.SubElement(entry, "updated").text = _iso(post.published_at)
        ET.SubElement(
            entry, "category", term=post.platform, label=LABELS.get(post.platform, post.platform)
        )
        ET.SubElement(entry, "content", type="text").text = post.text
        for link in post.links:
            rel = "alternate" if link is post.links[0] else "related"
            ET.SubElement(entry, "link", rel=rel, href=link["url"])
    body = b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(
        feed, encoding="utf-8", xml_declaration=False
    )
    return Response(body, media_type="application/atom+xml; charset=utf-8")


@router.get("/feeds/social.json", tags=["public"])
def json_feed(
    c: AppDep, platform: str | None = None, limit: int = Query(FEED_LIMIT, ge=1, le=500)
) -> Response:
    """Published posts as a JSON Feed 1.1 (https://jsonfeed.org/version/1.1)."""
    import json

    posts = _published(c, platform, limit)
    base = c.settings.public_base_url
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "WINWIN social posts" + (f" ({LABELS[platform]})" if platform else ""),
        "home_page_url": base,
        "feed_url": f"{base}/feeds/social.json" + (f"?platform={platform}" if platform else ""),
        "items": [
            {
                "id": post.id,
                "title": _title(post),
                "content_text": post.text,
                **({"url": post.links[0]["url"]} if post.links else {}),
                "date_published": _iso(post.published_at),
                "tags": [post.platform],
                "_winwin": {
                    "platform": post.platform,
                    "campaign_id": post.campaign_id,
                    "links": post.links,
                },
            }
            for post in posts
        ],
    }
    return Response(json.dumps(feed, ensure_ascii=False), media_type="application/feed+json")


# --- reach ----------------------------------------------------------------------------


class ReachIn(StaffInput):
    platform: str = Field(max_length=20)
    date: dt.date
    impressions: int = Field(ge=0)
    reach: int | None = Field(default=None, ge=0)


@router.post("/api/v1/campaigns/{campaign_id}/reach")
def post_reach(
    campaign_id: str,
    c: AppDep,
    _: Authorized,
    body: ReachIn | list[ReachIn] = Body(...),
) -> dict[str, int]:
    """Store platform-reported impressions/reach per (platform, date); later reports replace."""
    items = body if isinstance(body, list) else [body]
    if not 1 <= len(items) <= 1000:
        raise HTTPException(422, "body: 1 to 1000 reach reports per request")
    for index, item in enumerate(items):
        if item.platform not in PLATFORMS:
            raise HTTPException(422, f"[{index}].platform: one of {', '.join(PLATFORMS)}")
    now = dt.datetime.now(dt.UTC)
    latest = {(i.platform, i.date): i for i in items}  # the last report of a day in this body wins
    rows = [
        {
            "campaign_id": campaign_id,
            "platform": p,
            "date": d,
            "impressions": i.impressions,
            "reach": i.reach,
            "updated_at": now,
        }
        for (p, d), i in latest.items()
    ]
    with c.sessions() as session, session.begin():
        _social_campaign(session, campaign_id)
        upsert(
            session, cast(Table, CampaignReach.__table__), rows, ["campaign_id", "platform", "date"]
        )
    return {"stored": len(rows)}


@router.get("/api/v1/campaigns/{campaign_id}/reach")
def get_reach(campaign_id: str, c: AppDep, _: Authorized) -> dict[str, Any]:
    """Totals per platform (impressions summed; reach summed over days, so not unique
    accounts) and the reported days."""
    table = CampaignReach
    with c.sessions() as session:
        _social_campaign(session, campaign_id)
        days = session.execute(
            select(table.platform, table.date, table.impressions, table.reach)
            .where(table.campaign_id == campaign_id)
            .order_by(table.platform, table.date)
        ).all()
        totals = session.execute(
            select(table.platform, func.sum(table.impressions), func.sum(table.reach), func.count())
            .where(table.campaign_id == campaign_id)
            .group_by(table.platform)
            .order_by(table.platform)
        ).all()
    return {
        "campaign_id": campaign_id,
        "platforms": [
            {
                "platform": p,
                "impressions": int(i or 0),
                "reach": int(r) if r is not None else None,
                "days": n,
            }
            for p, i, r, n in totals
        ],
        "total": {"impressions": sum(int(t[1] or 0) for t in totals)},
        "days": [
            {"platform": p, "date": d.isoformat(), "impressions": i, "reach": r}
            for p, d, i, r in days
        ],
    }
