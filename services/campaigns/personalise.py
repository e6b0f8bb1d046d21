"""One recipient's message: the right language variant of the template, rendered in the
sandbox with this recipient's tracked links, pixel, unsubscribe and reply addresses.

Every per-recipient value that lands in the message is noted in ``substitutions`` so the
SendGrid sender can share one body skeleton across a request (channels/email.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from services.campaigns.channels.email import OutgoingEmail, list_unsubscribe_headers
from services.campaigns.rendering import Rendered, TemplateProblem
from services.db.session import transaction
from services.tracking.links import check_destination, create_link
from services.tracking.reply_addresses import reply_address

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from services.application import Container

__all__ = ["CampaignRun", "Personaliser", "Recipient", "Version", "language_key", "with_pixel"]

#: Set when the sender supports a per-email reply address (OutgoingEmail.reply_to).
_HAS_REPLY_TO = "reply_to" in getattr(OutgoingEmail, "__dataclass_fields__", {})


@dataclass(frozen=True, slots=True)
class Recipient:
    send_id: str
    person: str
    email: str
    name: str | None
    language: str | None
    attributes: dict[str, Any]
    recommended: tuple[Any, ...] = ()  # services.domain.needs.Recommendation, best first


@dataclass(frozen=True, slots=True)
class Version:
    """The texts of a template or of one of its language variants."""

    subject: str | None
    html: str | None
    text: str


@dataclass
class CampaignRun:
    """What one campaign's sending needs, loaded once per dispatch."""

    id: str
    name: str
    default: Version
    variants: dict[str, Version]  # language key → variant
    resources: list[Any]
    resource_links: dict[str, str] = field(default_factory=dict)  # resource id → link id
    tracked_links: dict[str, str] = field(default_factory=dict)  # destination → link id
    persons: dict[str, str] = field(default_factory=dict)  # send id → pseudonym
    unsubscribe_group: int | None = None  # SendGrid ASM group of the campaign
    throttle_per_hour: int | None = None  # at most so many sends in any hour

    def mentions(self, name: str) -> bool:
        """Whether any part of any version names ``name`` (a context key a template
        cannot reach without writing its name: the sandbox has no ``locals()``)."""
        versions = (self.default, *self.variants.values())
        return any(name in (part or "") for v in versions for part in (v.subject, v.html, v.text))

    def version_for(self, language: str | None) -> Version:
        """The variant of ``language`` (``es-MX`` falls back to ``es``), else the default."""
        key = language_key(language)
        if key is None:
            return self.default
        return self.variants.get(key) or self.variants.get(key.split("-")[0]) or self.default


def language_key(language: str | None) -> str | None:
    """``"es_MX "`` → ``"es-mx"``; empty → None."""
    if not language or not language.strip():
        return None
    return language.strip().replace("_", "-").lower()


@dataclass(frozen=True, slots=True)
class _Draft:
    """One recipient's message before rendering."""

    recipient: Recipient
    version: Version
    context: dict[str, Any]
    values: dict[str, str]  # per-recipient value → its substitution key (filled by track)
    unsubscribe: str
    pixel: str


class Personaliser:
    """Builds :class:`OutgoingEmail` for recipients of a :class:`CampaignRun`."""

    def __init__(self, container: Container) -> None:
        self._c = container
        self._base = container.settings.public_base_url.rstrip("/")
        self._reply_domain = container.settings.reply_domain.strip()
        self._secret = container.settings.secret_key.get_secret_value().encode()

    def emails(
        self, run: CampaignRun, recipients: Sequence[Recipient], batch_id: str
    ) -> tuple[list[OutgoingEmail], list[tuple[Recipient, str]]]:
        """Render a batch's messages in one job of the render pool: the emails, and the
        recipients whose message failed (with the reason: error, time or size limit)."""
        drafts = [self._draft(run, r) for r in recipients]
        rendered = self._c.renderer.render_many(
            [((d.version.subject, d.version.html, d.version.text), d.context) for d in drafts]
        )
        emails, failed = [], []
        for draft, out in zip(drafts, rendered, strict=True):
            try:
                if isinstance(out, TemplateProblem):
                    raise out
                emails.append(self._email(run, draft, out, batch_id))
            except TemplateProblem as problem:
                failed.append((draft.recipient, problem.reason))
        return emails, failed

    def _draft(self, run: CampaignRun, r: Recipient) -> _Draft:
        """The context of one recipient's message; every per-recipient value is noted."""
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
        context = {
            "contact": {"name": name, "first_name": first_name, "language": r.language or ""}
            | {"attributes": r.attributes},
            "campaign": {"id": run.id, "name": run.name},
            "resources": resources,
            "recommended": self._recommended(run, r, values),
            "messenger": None,
            "track": self._tracker(run, r.send_id, values),
            "unsubscribe_url": unsubscribe,
            "preferences_url": unsubscribe,
        }
        return _Draft(r, run.version_for(r.language), context, values, unsubscribe, pixel)

    def _email(self, run: CampaignRun, d: _Draft, out: Rendered, batch_id: str) -> OutgoingEmail:
        if not out.subject:
            raise TemplateProblem("subject: an email needs a non-empty subject")
        r = d.recipient
        extra: dict[str, Any] = {}
        if self._reply_domain and _HAS_REPLY_TO:
            extra["reply_to"] = reply_address(self._secret, r.send_id, self._reply_domain)
        return OutgoingEmail(
            send_id=r.send_id,
            to_email=r.email,
            to_name=r.name or None,
            subject=out.subject,
            html=with_pixel(out.html, d.pixel),
            text=out.text,
            headers=list_unsubscribe_headers(d.unsubscribe),
            custom_args={
                "ww_campaign": run.id,
                "ww_person": r.person,
                "ww_send": r.send_id,
                "ww_batch": batch_id,
            },
            substitutions=d.values,
            asm_group_id=run.unsubscribe_group,
            **extra,
        )

    def _tracker(self, run: CampaignRun, send_id: str, values: dict[str, str]) -> Any:
        tracked: dict[str, str] = {}
        tokens, base = self._c.tokens, self._base

        def track(url: str) -> str:
            link_id = self.tracked_link(run, url)
            if link_id not in tracked:
                tracked[link_id] = f"{base}/r/{tokens.sign('r', link_id, send_id)}"
                values[f"-ww_trk{len(tracked) - 1}-"] = tracked[link_id]
            return tracked[link_id]

        return track

    def _recommended(
        self, run: CampaignRun, r: Recipient, values: dict[str, str]
    ) -> list[dict[str, Any]]:
        """The recipient's best-matched resources, each behind their own tracked link."""
        out = []
        for i, rec in enumerate(r.recommended):
            link_id = self.tracked_link(run, rec.url)
            url = f"{self._base}/r/{self._c.tokens.sign('r', link_id, r.send_id)}"
            values[f"-ww_rec{i}-"] = url
            out.append(
                {
                    "id": rec.resource_id,
                    "title": rec.title,
                    "kind": rec.kind,
                    "url": url,
                    "reason": rec.reason,
                }
            )
        return out

    def tracked_link(self, run: CampaignRun, url: str) -> str:
        """The campaign-level link id for ``url`` (created on first use, then cached)."""
        if not isinstance(url, str) or not url.strip().lower().startswith(("http://", "https://")):
            raise ValueError(f"track() needs an absolute http(s) URL, got {url!r}")
        destination = check_destination(url, self._c.settings)
        link_id = run.tracked_links.get(destination)
        if link_id is None:
            with transaction(self._c.sessions) as session:
                link_id = self.new_link(session, run.id, destination)
            run.tracked_links[destination] = link_id
        return link_id

    def new_link(self, session: Session, campaign_id: str, url: str, **fields: Any) -> str:
        link = create_link(
            session, self._c.settings, url, campaign_id=campaign_id, channel="email", **fields
        )
        return str(link.id)


def with_pixel(html: str | None, pixel_url: str) -> str | None:
    """The open pixel, just before ``</body>`` (or at the end)."""
    if html is None:
        return None
    tag = f'<img src="{pixel_url}" width="1" height="1" alt="">'
    at = html.lower().rfind("</body>")
    return html + tag if at < 0 else html[:at] + tag + html[at:]
