"""Staff objects: contacts, resources, messengers, templates, campaigns, the local outbox."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import AfterValidator, EmailStr, Field, Strict
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.analytics import sharing
from services.analytics.routes import min_cell_for
from services.auth import Authorized
from services.bootstrap import AppDep, Container
from services.campaigns import contact_profile
from services.campaigns.confirmations import send_confirmations
from services.campaigns.contacts import contact_care, save_contacts
from services.campaigns.dispatch import make_sender
from services.campaigns.outbox_store import list_outbox
from services.campaigns.render_pool import BoundedRenderer
from services.campaigns.rendering import TemplateProblem, sample_context
from services.campaigns.schedule import CampaignStateError
from services.campaigns.social import check_social_campaign
from services.campaigns.views import campaign_view, target_audience
from services.db.models import Campaign, Contact, Messenger, Resource, Template
from services.db.models_audiences import CampaignAudience
from services.db.unit_of_work import in_session
from services.db.upsert import upsert
from services.domain.events import supported_time
from services.domain.inputs import readable, too_deep
from services.domain.unsubscribe_groups import MAX_GROUP_ID
from services.experiments.assign import save_holdout
from services.experiments.holdout_input import HoldoutIn, holdout_for
from services.experiments.variant_input import ContentTestIn, content_test_for
from services.experiments.variants import save_content_test
from services.ids import new_id
from services.json_bodies import JSONBodyRoute
from services.service_layer import handlers
from services.staff_input import StaffInput

if TYPE_CHECKING:
    pass

router = APIRouter(route_class=JSONBodyRoute, tags=["staff"])
Channel = Literal["email", "social", "toolkit"]


# --- contacts ------------------------------------------------------------------------


class ConsentIn(StaffInput):
    email: Literal["confirmed", "unconfirmed", "unsubscribed"] = "unconfirmed"


def _shallow(attributes: dict[str, Any]) -> dict[str, Any]:
    """Attributes nest as deep as an event's properties may (32 levels), or are refused."""
    if problem := too_deep(attributes):
        raise ValueError(problem)
    return attributes


class ContactIn(StaffInput):
    external_id: str = Field(min_length=1, max_length=200)
    email: EmailStr | None = None
    name: str | None = Field(default=None, max_length=200)
    role: str | None = Field(default=None, max_length=50)
    language: str | None = Field(default=None, max_length=20)
    attributes: Annotated[dict[str, Any], AfterValidator(_shallow)] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    needs: list[str] = Field(default_factory=list)
    consent: ConsentIn | None = None
    birth_date: date | None = None
    birth_year: int | None = Field(default=None, ge=1900, le=2200)
    #: The external ids of the contact's guardians (links added, never removed here).
    guardians: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = None


@router.post("/api/v1/contacts")
def post_contacts(items: list[ContactIn], c: AppDep, _: Authorized) -> dict[str, int]:
    if not 1 <= len(items) <= 1000:
        raise HTTPException(422, "body: 1 to 1000 contacts per request")
    with c.sessions() as session, session.begin():
        saved = save_contacts(
            session,
            c.settings.secret_key.get_secret_value().encode(),
            [i.model_dump(exclude_unset=True) for i in items],
            now=c.now(),
        )
    send_confirmations(c, make_sender(c))  # double opt-in: after the commit
    # kept_unsubscribed: contacts whose unsubscribe stands although the body gave another
    # consent (only the person can subscribe again)
    return saved._asdict()


@router.get("/api/v1/contacts")
def get_contacts(
    c: AppDep,
    _: Authorized,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=2**62),
    q: str = Query("", max_length=320, description="part of an external id, name or email"),
) -> list[dict[str, Any]]:
    with c.sessions() as session:
        return [_contact_json(r, c) for r in contact_profile.search(session, q, limit, offset)]


@router.get("/api/v1/contacts/{external_id}")
def get_contact(external_id: str, c: AppDep, _: Authorized) -> dict[str, Any]:
    """The contact, its consent history, stages reached by month, touches and journeys."""
    with c.sessions() as session:
        contact = session.scalar(select(Contact).where(Contact.external_id == external_id))
        found = contact_profile.profile(session, external_id)
        if contact is None or found is None:
            raise HTTPException(404, "no such contact")
        return _contact_json(contact, c) | found


def _contact_json(r: Contact, c: Container) -> dict[str, Any]:
    return {
        "external_id": r.external_id,
        "email": r.email,
        "name": r.name,
        "role": r.role,
        "language": r.language,
        "attributes": r.attributes and readable(r.attributes),
        "tags": r.tags,
        "needs": r.needs,
        "consent": {"email": r.email_consent},
    } | contact_care(r, c.now(), c.settings.timezone)


# --- resources & messengers ------------------------------------------------------------


class ResourceIn(StaffInput):
    id: str | None = Field(default=None, max_length=100)
    title: str = Field(min_length=1, max_length=300)
    url: str = Field(max_length=2000, pattern=r"^https?://")
    kind: str = Field(min_length=1, max_length=50)
    topics: list[str] = Field(default_factory=list)


class MessengerIn(StaffInput):
    id: str | None = Field(default=None, max_length=100)
    name: str = Field(min_length=1, max_length=200)
    role: str = Field(min_length=1, max_length=50)


@router.post("/api/v1/resources", status_code=201)
def post_resource(body: ResourceIn, c: AppDep, _: Authorized) -> dict[str, Any]:
    row = body.model_dump() | {"id": body.id or new_id()}
    with c.sessions() as session, session.begin():
        upsert(session, Resource.__table__, [row], ["id"])
    return row


@router.get("/api/v1/resources")
def get_resources(c: AppDep, _: Authorized) -> list[dict[str, Any]]:
    with c.sessions() as session:
        return [
            {"id": r.id, "title": r.title, "url": r.url, "kind": r.kind, "topics": r.topics}
            for r in session.scalars(select(Resource).order_by(Resource.id))
        ]


@router.post("/api/v1/messengers", status_code=201)
def post_messenger(body: MessengerIn, c: AppDep, _: Authorized) -> dict[str, Any]:
    row = body.model_dump() | {"id": body.id or new_id()}
    with c.sessions() as session, session.begin():
        upsert(session, Messenger.__table__, [row], ["id"])
    return row


@router.get("/api/v1/messengers")
def get_messengers(c: AppDep, _: Authorized) -> list[dict[str, Any]]:
    with c.sessions() as session:
        return [
            {"id": m.id, "name": m.name, "role": m.role}
            for m in session.scalars(select(Messenger).order_by(Messenger.id))
        ]


# --- templates -----------------------------------------------------------------------


class TemplateIn(StaffInput):
    name: str = Field(min_length=1, max_length=200)
    channel: Channel = "email"
    subject: str | None = Field(default=None, max_length=1000)
    html: str | None = Field(default=None, max_length=500_000)
    text: str = Field(max_length=500_000)


class PreviewIn(StaffInput):
    subject: str | None = None
    html: str | None = None
    text: str
    channel: Channel = "email"
    context: dict[str, Any] | None = None


@router.post("/api/v1/templates", status_code=201)
def post_template(body: TemplateIn, c: AppDep, _: Authorized) -> dict[str, Any]:
    check_template(body, c)
    row = body.model_dump() | {"id": new_id()}
    with c.sessions() as session, session.begin():
        session.add(Template(**row))
    return row


def check_template(body: TemplateIn, c: Container) -> None:
    """422 unless the template renders in the sending sandbox (and an email has a subject)."""
    if body.channel == "email" and not body.subject:
        raise HTTPException(422, "subject: required for email templates")
    try:
        c.renderer.check(body.subject, body.html, body.text, channel=body.channel)
    except TemplateProblem as exc:
        raise HTTPException(422, f"template does not render: {exc}") from None


@router.post("/api/v1/templates/preview")
def preview_template(body: PreviewIn, c: AppDep, _: Authorized) -> dict[str, Any]:
    context = sample_context(body.channel) | (body.context or {})
    try:
        rendered = c.renderer.render(body.subject, body.html, body.text, context)
    except TemplateProblem as exc:
        raise HTTPException(422, f"template does not render: {exc}") from None
    return {"subject": rendered.subject, "html": rendered.html, "text": rendered.text}


# --- campaigns -----------------------------------------------------------------------


def _supported_send_at(v: datetime | None) -> datetime | None:
    """In UTC (a naive time is UTC) and inside the supported time range, else 422."""
    return supported_time(v if v.tzinfo else v.replace(tzinfo=UTC), "send_at") if v else v


SendAt = Annotated[datetime | None, AfterValidator(_supported_send_at)]


class CampaignIn(StaffInput):
    name: str = Field(min_length=1, max_length=200)
    channel: Channel
    template_id: str
    audience: dict[str, Any] | None = None
    #: a stored audience (``/api/v1/audiences``) instead of ``audience``; email only
    audience_id: str | None = Field(default=None, max_length=40)
    resources: list[str] = Field(default_factory=list)
    messengers: list[str] = Field(default_factory=list)
    platforms: list[Literal["x", "linkedin", "facebook", "instagram"]] | None = None
    send_at: SendAt = None
    #: SendGrid unsubscribe (ASM) group id of an email campaign.
    unsubscribe_group: Annotated[int, Strict()] | None = Field(default=None, ge=1, le=MAX_GROUP_ID)
    #: a randomized holdout (email only): ``{"share": 0.2, "window_days": 30}``
    holdout: HoldoutIn | None = None
    #: Children under 13 without guardian consent: skipped, or their guardians get it.
    children: Literal["skip", "guardians"] | None = None
    #: The monthly digest (reaches people who chose "monthly digest only").
    digest: bool | None = None
    #: At most so many emails in any hour (email only); none: as fast as sending allows
    throttle_per_hour: Annotated[int, Strict()] | None = Field(default=None, ge=1, le=1_000_000)
    #: A/B/n (email only): ``{"variants": [...], "test_share", "metric", "decide_at"}``
    content_test: ContentTestIn | None = None


class ScheduleIn(StaffInput):
    send_at: SendAt = None


def attach_audience(session: Session, campaign_id: str, body: CampaignIn) -> None:
    """The stored audience an email campaign goes to (ValueError: not one it can)."""
    target_audience(session, body.channel, body.audience, body.audience_id)
    session.add(CampaignAudience(campaign_id=campaign_id, audience_id=body.audience_id))


def attach_content_test(
    session: Session, campaign_id: str, body: CampaignIn, now: datetime, renderer: BoundedRenderer
) -> None:
    """The campaign's A/B/n content test (ValueError: not one it can run). A variant's
    own subject renders in the sandbox now, not at send time for each of its people."""
    test = content_test_for(session, body.channel, body.content_test, body.send_at, now)
    if test is None:
        return
    for i, variant in enumerate(test.variants):
        if variant.subject is not None:
            try:
                renderer.check(variant.subject, None, "-")
            except TemplateProblem as exc:
                raise ValueError(f"content_test.variants[{i}].subject: {exc}") from None
    save_content_test(session, campaign_id, test)


@router.post("/api/v1/campaigns", status_code=201)
def post_campaign(body: CampaignIn, c: AppDep, _: Authorized) -> dict[str, Any]:
    """A new draft campaign; the rules are the handler's (services/service_layer), what
    comes with it (a holdout) is stored in the same transaction."""
    fields = body.model_dump(exclude={"holdout", "audience_id", "content_test"})
    try:
        holdout = holdout_for(body.channel, body.holdout)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    extras = []
    if holdout is not None:
        extras.append(in_session(lambda s, cid: save_holdout(s, "campaign", cid, holdout)))
    if body.audience_id is not None:
        extras.append(in_session(partial(attach_audience, body=body)))
    if body.content_test is not None:
        extras.append(
            in_session(partial(attach_content_test, body=body, now=c.now(), renderer=c.renderer))
        )
    try:
        made = handlers.create_campaign(
            c.unit_of_work(),
            handlers.NewCampaign(**fields),
            check_posts=lambda: check_social_campaign(c, body.model_dump()),
            extras=extras,
        )
    except handlers.CampaignRefused as exc:
        raise HTTPException(422, str(exc)) from None
    with c.sessions() as session:  # as GET shows it, with what came with it
        return campaign_view(session, session.get_one(Campaign, made["id"]))


@router.get("/api/v1/campaigns")
def list_campaigns(
    request: Request, response: Response, c: AppDep, _: Authorized
) -> list[dict[str, Any]]:
    min_cell = min_cell_for(request, response, c)  # small counts withheld from analysts
    with c.sessions() as session:
        return [
            sharing.campaign(campaign_view(session, x), min_cell)
            for x in session.scalars(select(Campaign).order_by(Campaign.created_at.desc()))
        ]


@router.get("/api/v1/campaigns/{campaign_id}")
def get_campaign(
    request: Request, response: Response, campaign_id: str, c: AppDep, _: Authorized
) -> dict[str, Any]:
    min_cell = min_cell_for(request, response, c)
    with c.sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise HTTPException(404, "campaign not found")
        return sharing.campaign(campaign_view(session, campaign), min_cell)


@router.post("/api/v1/campaigns/{campaign_id}/schedule")
def schedule_campaign(
    campaign_id: str, c: AppDep, _: Authorized, body: ScheduleIn | None = None
) -> dict[str, Any]:
    send_at = body.send_at if body else None
    with _campaign_errors():
        return handlers.schedule_campaign(c.unit_of_work(), campaign_id, send_at, c.now())


@router.post("/api/v1/campaigns/{campaign_id}/cancel")
def cancel_campaign(campaign_id: str, c: AppDep, _: Authorized) -> dict[str, Any]:
    with _campaign_errors():
        return handlers.cancel_campaign(c.unit_of_work(), campaign_id)


@contextmanager
def _campaign_errors() -> Iterator[None]:
    """A handler's errors as answers: 404 for an unknown campaign, 409 for a status
    change its status does not allow."""
    try:
        yield
    except handlers.CampaignNotFound:
        raise HTTPException(404, "campaign not found") from None
    except CampaignStateError as exc:
        raise HTTPException(409, str(exc)) from None


# --- the local outbox (no SendGrid key) ----------------------------------------------


@router.get("/api/v1/outbox")
def get_outbox(
    c: AppDep,
    _: Authorized,
    campaign_id: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    if c.settings.sendgrid_enabled:
        raise HTTPException(404, "the local outbox is off: emails go to SendGrid")
    with c.sessions() as session:
        return list_outbox(session, campaign_id=campaign_id, limit=limit)


@router.get("/outbox", include_in_schema=False, response_class=HTMLResponse)
def outbox_page(c: AppDep, _: Authorized) -> str:
    from html import escape

    items = get_outbox(c, None, None, 50)
    rows = "".join(
        f"<tr><td>{escape(m['created_at'] or '')}</td><td>{escape(m['to'])}</td><td>{escape(m['subject'])}</td>"
        f"<td><details><summary>text</summary><pre>{escape(m['text'])}</pre></details></td></tr>"
        for m in items
    )
    return (
        "<!doctype html><meta charset=utf-8><title>WINWIN local outbox</title>"
        "<style>body{font:14px system-ui;margin:2rem}td{border-bottom:1px solid #ddd;padding:.3rem;vertical-align:top}</style>"
        f"<h1>Local outbox</h1><p>Emails that would have gone to SendGrid (latest 50).</p><table>{rows}</table>"
    )
