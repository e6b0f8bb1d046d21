"""``winwin campaign create FILE.yaml | list | schedule ID [--at ISO8601] | cancel ID``, and
``winwin toolkit build CAMPAIGN_ID [--messenger ID] --out DIR``.

``create`` takes the fields of ``POST /api/v1/campaigns``; ``template:`` may hold an inline
template ``{name, subject, html, text, variants: {LANG: {subject, html, text}}}`` instead
of ``template_id``. A ``send_at`` or ``--at`` without an offset is read in
``WINWIN_TIMEZONE``; times are stored in UTC.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import ValidationError
from sqlalchemy import select

from services.bootstrap import Container, bootstrap
from services.campaigns.dispatch import progress
from services.campaigns.rendering import TemplateProblem
from services.campaigns.routes import CampaignIn, TemplateIn
from services.campaigns.schedule import CampaignStateError, cancel, schedule
from services.campaigns.toolkit_pages import write_zip
from services.campaigns.toolkits import ToolkitError, ensure_toolkits
from services.config import Settings
from services.db.migrate import upgrade
from services.db.models import Campaign, Resource, Template
from services.db.models_consent import TemplateVariant
from services.domain.audience import AudienceError, parse_audience
from services.domain.events import EventError, supported_time
from services.domain.lifecycle import CampaignStatus
from services.domain.social import campaign_platforms
from services.errors import UsageError
from services.ids import new_id

__all__ = ["build_command", "run_campaign_command"]


def run_campaign_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run one ``winwin campaign`` action; 0 on success (UsageError → exit 2)."""
    upgrade(settings.database_url)
    container = bootstrap(settings)
    try:
        match args.campaign_command:
            case "create":
                return _create(container, Path(args.file))
            case "list":
                return _list(container)
            case "schedule":
                return _change(container, args.id, "schedule", getattr(args, "at", None))
            case "cancel":
                return _change(container, args.id, "cancel", None)
        raise UsageError(f"unknown campaign action {args.campaign_command!r}")
    finally:
        container.close()


def _load_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: must be a mapping of campaign fields")
    return data


def _when(value: Any, timezone: str) -> datetime | None:
    """An aware UTC time in the supported range; a naive one is read in ``timezone``."""
    if value in (None, ""):
        return None
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise UsageError(f"send_at: {value!r} is not an ISO 8601 date-time") from None
    try:
        return supported_time(
            moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(timezone)),
            "send_at",
            str(value),
        )
    except EventError as exc:
        raise UsageError(str(exc)) from None


def _create(c: Container, path: Path) -> int:
    data = _load_yaml(path)
    inline = data.pop("template", None)
    variants: dict[str, Any] = {}
    send_at = _when(data.pop("send_at", None), c.settings.timezone)
    try:
        if inline is not None:
            if not isinstance(inline, dict):
                raise UsageError("template: must be a mapping {name, subject, html, text}")
            variants = inline.pop("variants", None) or {}
            template = TemplateIn(**({"channel": data.get("channel", "email")} | inline))
            data["template_id"] = "inline"
        body = CampaignIn(**data)
        parse_audience(body.audience)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UsageError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    except AudienceError as exc:
        raise UsageError(f"audience: {exc}") from None
    with c.sessions() as session, session.begin():
        if inline is not None:
            texts = [(template.subject, template.html, template.text)]
            texts += [
                (v.get("subject"), v.get("html"), v.get("text", "")) for v in variants.values()
            ]
            for subject, html, text in texts:
                try:
                    c.renderer.check(subject, html, text, channel=template.channel)
                except TemplateProblem as exc:
                    raise UsageError(f"template does not render: {exc}") from None
            body.template_id = new_id()
            session.add(Template(id=body.template_id, **template.model_dump()))
            session.flush()
            for language, v in variants.items():
                session.add(TemplateVariant(template_id=body.template_id, language=str(language).lower(),
                                            subject=v.get("subject"), html=v.get("html"), text=v.get("text", "")))  # fmt: skip
        elif session.get(Template, body.template_id) is None:
            raise UsageError(f"template_id: unknown template {body.template_id!r}")
        known = set(session.scalars(select(Resource.id).where(Resource.id.in_(body.resources))))
        if missing := [r for r in body.resources if r not in known]:
            raise UsageError(f"resources: unknown resource ids {missing}")
        platforms = campaign_platforms(body.channel, body.platforms)
        campaign = Campaign(
            id=new_id(), name=body.name, channel=body.channel, template_id=body.template_id,
            audience=body.audience, resources=body.resources, messengers=body.messengers,
            platforms=platforms, send_at=send_at, status=CampaignStatus.DRAFT,
        )  # fmt: skip
        session.add(campaign)
    print(f"campaign {campaign.id} created (draft): winwin campaign schedule {campaign.id}")
    return 0


def _list(c: Container) -> int:
    with c.sessions() as session:
        rows = session.scalars(select(Campaign).order_by(Campaign.created_at.desc())).all()
        print(
            f"{'ID':<14} {'STATUS':<10} {'CHANNEL':<8} {'SEND AT (UTC)':<20} {'SENT/TOTAL':>12}  NAME"
        )
        for x in rows:
            p = progress(session, x.id)
            at = x.send_at.strftime("%Y-%m-%d %H:%M") if x.send_at else "-"
            print(
                f"{x.id:<14} {x.status:<10} {x.channel:<8} {at:<20} {p['sent']:>5}/{p['total']:<6}  {x.name}"
            )
    return 0


def _change(c: Container, campaign_id: str, action: str, at: str | None) -> int:
    when = _when(at, c.settings.timezone)
    with c.sessions() as session, session.begin():
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise UsageError(f"campaign {campaign_id!r} not found")
        try:
            if action == "schedule":
                schedule(session, campaign, when, c.now())
            else:
                cancel(session, campaign)
        except CampaignStateError as exc:
            raise UsageError(str(exc)) from None
        status, send_at = campaign.status, campaign.send_at
    suffix = f" for {send_at.isoformat()}" if action == "schedule" and send_at else ""
    print(f"campaign {campaign_id} {status}{suffix}")
    return 0


# --- winwin toolkit build (issue 15: moved from campaigns/toolkits.py, an entry point) ---


def build_command(settings: Settings, args: argparse.Namespace) -> int:
    """``winwin toolkit build CAMPAIGN_ID [--messenger ID] --out DIR``: one ZIP per messenger."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out}: not a directory")
    upgrade(settings.database_url)
    container = bootstrap(settings)
    try:
        only = [args.messenger] if args.messenger else None
        try:
            views = ensure_toolkits(container, args.campaign_id, only, refresh=True)
        except ToolkitError as exc:
            raise UsageError(str(exc)) from None
        if not views:
            raise UsageError(
                f"campaign {args.campaign_id!r} has no messengers with a known Messenger record"
            )
        out.mkdir(parents=True, exist_ok=True)
        for n, view in enumerate(views, 1):
            path = out / f"toolkit-{_safe(view.campaign_id)}-{_safe(view.messenger['id'])}.zip"
            files = write_zip(container.renderer.trusted, view, path, settings.public_base_url)
            print(
                f"[{n}/{len(views)}] {view.messenger['id']}: {path} ({files} files)",
                file=sys.stderr,
            )
        print(f"{len(views)} toolkit ZIP(s) written to {out}")
    finally:
        container.close()
    return 0


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80] or "_"
