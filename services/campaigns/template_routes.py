"""Templates for the console (issue 16): list, read one, edit, and "Send me a test".

``GET /api/v1/templates`` lists them (newest last), ``GET /api/v1/templates/{id}`` reads
one, ``PUT /api/v1/templates/{id}`` replaces its name, subject, html and text after the
same sandbox check as creating one. ``POST /api/v1/templates/{id}/test`` renders it with
the sample values and sends it to the signed-in account's own email through the campaigns'
sender (the local outbox in dev); a bearer token, which has no email, gets 422.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy import select

from services.auth import Authorized
from services.bootstrap import AppDep
from services.campaigns.channels.email import OutgoingEmail
from services.campaigns.dispatch import make_sender
from services.campaigns.rendering import TemplateProblem, sample_context
from services.campaigns.routes import TemplateIn, check_template
from services.db.models import Template
from services.domain.roles import ActorKind
from services.ids import new_id
from services.json_bodies import JSONBodyRoute

router = APIRouter(route_class=JSONBodyRoute, tags=["staff"])
FIELDS = ("id", "name", "channel", "subject", "html", "text")


def _json(t: Template) -> dict[str, Any]:
    return {name: getattr(t, name) for name in FIELDS}


@router.get("/api/v1/templates")
def get_templates(c: AppDep, _: Authorized) -> list[dict[str, Any]]:
    with c.sessions() as session:
        return [_json(t) for t in session.scalars(select(Template).order_by(Template.name))]


@router.get("/api/v1/templates/{template_id}")
def get_template(template_id: str, c: AppDep, _: Authorized) -> dict[str, Any]:
    with c.sessions() as session:
        found = session.get(Template, template_id)
        if found is None:
            raise HTTPException(404, "no such template")
        return _json(found)


@router.put("/api/v1/templates/{template_id}")
def put_template(template_id: str, body: TemplateIn, c: AppDep, _: Authorized) -> dict[str, Any]:
    """Replaces the template; its channel stays (campaigns rely on it)."""
    check_template(body, c)
    with c.sessions() as session, session.begin():
        found = session.get(Template, template_id)
        if found is None:
            raise HTTPException(404, "no such template")
        if body.channel != found.channel:
            raise HTTPException(422, f"channel: a template stays {found.channel}")
        for name in ("name", "subject", "html", "text"):
            setattr(found, name, getattr(body, name))
        return _json(found)


@router.post("/api/v1/templates/{template_id}/test")
def send_test(template_id: str, request: Request, c: AppDep, _: Authorized) -> dict[str, Any]:
    """The template, rendered with the sample values, to the signed-in account's email."""
    actor = request.state.actor
    if actor.kind is not ActorKind.ACCOUNT:
        raise HTTPException(422, "sign in with your account: the test goes to its email")
    template = get_template(template_id, c, None)
    try:
        out = c.renderer.render(
            template["subject"], template["html"], template["text"], sample_context("email")
        )
    except TemplateProblem as exc:
        raise HTTPException(422, f"template does not render: {exc}") from None
    email = OutgoingEmail(new_id(), actor.id, None, f"[test] {out.subject}", out.html, out.text)
    result = make_sender(c).send([email])[0]
    return {"id": template_id, "to": actor.id, "status": str(result.status)}
