"""The preference centre behind ``/u/{token}``: topics and a frequency, in the
person's language (English and Spanish; others get English).

The signed token is the capability: whoever holds the link may change that person's
choices, as with the one-click unsubscribe. A change is a POST whose form carries the
same token again (a cross-site page cannot read it from the link), and a browser's
``Origin`` header, when sent, must be WINWIN's own: a page elsewhere cannot post it.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from services.db.models import Contact, Resource
from services.domain.preferences import Frequency, parse_frequency
from services.tracking.consent import unsubscribe

if TYPE_CHECKING:
    from services.application import Container
    from services.tracking.links import SendView

__all__ = ["Choice", "language_of", "page", "parse_choice", "same_origin", "save"]

WORDS = {
    "en": {
        "title": "Email preferences", "topics": "Topics you want to hear about",
        "frequency": "How often", "as_sent": "Every email, as it is sent",
        "monthly_digest": "The monthly digest only", "none": "No emails",
        "save": "Save my choices", "saved": "Your choices are saved.",
        "unsubscribe": "Unsubscribe from these emails",
    },
    "es": {
        "title": "Preferencias de correo", "topics": "Temas que le interesan",
        "frequency": "Con qué frecuencia", "as_sent": "Cada correo, cuando se envía",
        "monthly_digest": "Solo el resumen mensual", "none": "Ningún correo",
        "save": "Guardar mis opciones", "saved": "Sus opciones están guardadas.",
        "unsubscribe": "Darse de baja de estos correos",
    },
}  # fmt: skip
Choice = tuple[list[str], Frequency]


def language_of(language: str | None) -> str:
    key = (language or "en")[:2].lower()
    return key if key in WORDS else "en"


def all_topics(c: Container) -> list[str]:
    """Every topic of the network's resources, sorted."""
    with c.sessions() as session:
        rows = session.scalars(select(Resource.topics))
        return sorted({str(t) for topics in rows for t in topics or ()})


def page(c: Container, token: str, send: SendView, saved: bool = False) -> str:
    """The preference form (the person's current choices checked) and the unsubscribe."""
    with c.sessions() as session:
        contact = session.get(Contact, send.contact_id)
        language = language_of(contact.language if contact else None)
        off = set(contact.topics_off or ()) if contact else set()
        frequency = parse_frequency(contact.frequency if contact else None)
    w = WORDS[language]
    boxes = "".join(
        f'<label><input type="checkbox" name="topics" value="{escape(t)}"'
        f"{'' if t in off else ' checked'}> {escape(t)}</label><br>"
        for t in all_topics(c)
    )
    radios = "".join(
        f'<label><input type="radio" name="frequency" value="{f}"'
        f"{' checked' if f == frequency else ''}> {w[f]}</label><br>"
        for f in Frequency
    )
    note = f"<p><strong>{w['saved']}</strong></p>" if saved else ""
    return (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer"><meta name="viewport" '
        f'content="width=device-width,initial-scale=1"><title>{w["title"]}</title></head>'
        f"<body><h1>{w['title']}</h1>{note}"
        f'<form method="post" action="/u/{token}/preferences">'
        f'<input type="hidden" name="token" value="{token}">'
        f"<fieldset><legend>{w['topics']}</legend>{boxes}</fieldset>"
        f"<fieldset><legend>{w['frequency']}</legend>{radios}</fieldset>"
        f'<button type="submit">{w["save"]}</button></form>'
        f'<form method="post" action="/u/{token}"><button type="submit">'
        f"{w['unsubscribe']}</button></form></body></html>"
    )


def same_origin(origin: str | None, base_url: str) -> bool:
    """A POST without ``Origin`` (not a browser) or from WINWIN's own origin."""
    if origin is None:
        return True
    ours = urlsplit(base_url)
    return origin.rstrip("/") == f"{ours.scheme}://{ours.netloc}"


def parse_choice(body: bytes, token: str) -> Choice | None:
    """The topics and frequency a form posts, or None when it lacks this token."""
    form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=1000)
    if form.get("token") != [token]:
        return None
    frequency = parse_frequency((form.get("frequency") or [""])[0])
    return [t[:200] for t in form.get("topics", [])], frequency


def save(c: Container, send: SendView, choice: Choice) -> None:
    """Store the person's choice: topics not chosen are turned off; "none" also
    unsubscribes them (consent, suppression and the event, as the one-click does)."""
    chosen, frequency = choice
    off = sorted(set(all_topics(c)) - set(chosen))
    with c.sessions() as session, session.begin():
        contact = session.get(Contact, send.contact_id)
        if contact is None:
            return
        contact.topics_off, contact.frequency = off, frequency.value
    if frequency == Frequency.NONE:
        unsubscribe(c, send, source="preferences")
