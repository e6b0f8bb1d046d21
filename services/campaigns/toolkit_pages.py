"""What a messenger gets: the toolkit page, the printable flyer, messages.txt, QR codes
(SVG and PNG, with segno), and the same bundled as a ZIP for ``winwin toolkit build``.

The fixed page templates in ``templates/toolkit/`` are rendered through the sandboxed
:class:`~services.campaigns.rendering.TemplateRenderer` (autoescaped), like every
template; only the campaign's own rendered HTML (staff-written, the flyer body) is
inserted as is, and only in the flyer served by ``/t/{token}/flyer``, under that route's
strict Content-Security-Policy header. The flyer in the ZIP is opened from disk, where no
header protects it: there the body is the HTML's text, escaped, and the page carries its
own policy (:data:`OFFLINE_CSP`: no scripts but the print button's, no requests, images
only from the page itself or ``data:``; its QR codes are embedded as ``data:`` URLs).
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import segno

from services.campaigns.rendering import TemplateRenderer
from services.campaigns.toolkits import KINDS, ToolkitView

__all__ = [
    "flyer_html",
    "html_paragraphs",
    "messages_text",
    "offline_csp",
    "page_html",
    "qr_png",
    "qr_svg",
    "write_zip",
]

PAGES = Path(__file__).resolve().parents[2] / "templates" / "toolkit"
LABELS = {
    "sms": "Text message (SMS)",
    "whatsapp": "WhatsApp",
    "email": "Email",
    "social": "Social media post",
}
SHARE_LABELS = {
    "sms": "Open in Messages",
    "whatsapp": "Open in WhatsApp",
    "email": "Open in your email",
}


@lru_cache(maxsize=4)
def _source(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def offline_csp() -> str:
    """The flyer's policy when opened from disk: its own print script (by hash) only."""
    script = re.search(r"<script[^>]*>(.*?)</script>", _source("flyer.html"), re.S)
    digest = hashlib.sha256(script[1].encode() if script else b"").digest()
    return (
        "default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{base64.b64encode(digest).decode()}'; "
        "base-uri 'none'; form-action 'none'"
    )


class _Text(HTMLParser):
    """The text of an HTML fragment, one paragraph per block element."""

    BLOCKS = frozenset(
        [
            "p",
            "div",
            "br",
            "li",
            "ul",
            "ol",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "tr",
            "table",
            "blockquote",
            "hr",
        ]
    )
    HIDDEN = frozenset(["script", "style", "template", "noscript", "title", "head"])

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[list[str]] = [[]]
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.paragraphs.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS:
            self.paragraphs.append([])

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.paragraphs[-1].append(data)


def html_paragraphs(html: str) -> list[str]:
    """``<p>Hello <b>you</b></p><p>Bye</p>`` → ``["Hello you", "Bye"]`` (no markup left)."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    texts = (" ".join("".join(p).split()) for p in parser.paragraphs)
    return [t for t in texts if t]


@lru_cache(maxsize=2048)
def qr_svg(url: str) -> bytes:
    """A QR code (never a Micro QR: phones must read it) of ``url`` as SVG."""
    buf = io.BytesIO()
    segno.make_qr(url, error="m").save(buf, kind="svg", scale=8, border=4, title=url)
    return buf.getvalue()


@lru_cache(maxsize=2048)
def qr_png(url: str) -> bytes:
    """The same QR code as a PNG, large enough to print (10 px per module)."""
    buf = io.BytesIO()
    segno.make_qr(url, error="m").save(buf, kind="png", scale=10, border=4)
    return buf.getvalue()


def _share_href(kind: str, text: str, subject: str) -> str | None:
    body = quote(text, safe="")
    if kind == "sms":
        return f"sms:?&body={body}"
    if kind == "whatsapp":
        return f"https://wa.me/?text={body}"
    if kind == "email":
        return f"mailto:?subject={quote(subject, safe='')}&body={body}"
    return None


def _messages(view: ToolkitView) -> list[dict[str, Any]]:
    subject = str(view.messages.get("subject") or view.campaign_name)
    out = []
    for kind in KINDS:
        text = view.messages.get(kind)
        if not text:
            continue
        out.append(
            {
                "kind": kind,
                "label": LABELS[kind],
                "text": text,
                "rows": min(14, max(3, text.count("\n") + 2)),
                "subject": subject if kind == "email" else None,
                "share_href": _share_href(kind, text, subject),
                "share_label": SHARE_LABELS.get(kind, ""),
            }
        )
    return out


def _links(view: ToolkitView, qr_prefix: str) -> list[dict[str, str]]:
    return [
        {
            "resource_id": x.resource_id,
            "title": x.title,
            "kind": x.kind,
            "url": x.url,
            "qr_svg": f"{qr_prefix}{quote(x.resource_id, safe='')}.svg",
            "qr_png": f"{qr_prefix}{quote(x.resource_id, safe='')}.png",
        }
        for x in view.links
    ]


def _context(view: ToolkitView, qr_prefix: str, nonce: str) -> dict[str, Any]:
    return {
        "campaign": {"id": view.campaign_id, "name": view.campaign_name},
        "messenger": view.messenger,
        "links": _links(view, qr_prefix),
        "nonce": nonce,
    }


def page_html(
    renderer: TemplateRenderer,
    view: ToolkitView,
    *,
    qr_prefix: str,
    flyer_href: str,
    shared_url: str = "",
    nonce: str = "",
) -> str:
    """The messenger's page: messages with copy and share buttons, QR codes, flyer link."""
    context = _context(view, qr_prefix, nonce) | {
        "messages": _messages(view),
        "flyer_href": flyer_href,
        "shared_url": shared_url,
    }
    return renderer.render(None, _source("page.html"), "", context).html or ""


def flyer_html(
    renderer: TemplateRenderer,
    view: ToolkitView,
    *,
    qr_prefix: str,
    nonce: str = "",
    offline: bool = False,
) -> str:
    """A one-page printable flyer (print stylesheet): the campaign's words and QR codes.

    ``offline`` (the ZIP): the template's HTML is reduced to its text, escaped, the QR
    codes are embedded, and the page carries :func:`offline_csp` in a meta tag.
    """
    intro = str(view.messages.get("intro") or view.messages.get("social") or "")
    paragraphs = [p.strip() for p in intro.split("\n\n") if p.strip()]
    body = view.messages.get("flyer_html")
    if offline and body:
        paragraphs, body = html_paragraphs(str(body)) or paragraphs, None
    context = _context(view, qr_prefix, nonce) | {
        "flyer_html": body,
        "paragraphs": paragraphs,
        "csp": offline_csp() if offline else "",
    }
    if offline:
        for link, x in zip(context["links"], view.links, strict=True):
            link["qr_svg"] = "data:image/svg+xml;base64," + base64.b64encode(qr_svg(x.url)).decode()
    return renderer.render(None, _source("flyer.html"), "", context).html or ""


def messages_text(view: ToolkitView) -> str:
    """Every message and link as plain text, for copying from the ZIP."""
    lines = [f"Campaign: {view.campaign_name}", f"Shared by: {view.messenger['name']}", ""]
    for m in _messages(view):
        lines += [
            f"== {m['label']} ==",
            *([f"Subject: {m['subject']}"] if m["subject"] else []),
            m["text"],
            "",
        ]
    lines.append("== Links (QR codes in qr/) ==")
    lines += [f"{x.title}: {x.url}" for x in view.links]
    return "\n".join(lines) + "\n"


def write_zip(
    renderer: TemplateRenderer, view: ToolkitView, path: Path, public_base_url: str
) -> int:
    """Write the toolkit as a ZIP (index.html, flyer.html, messages.txt, qr/*); return the file count."""
    files: dict[str, bytes | str] = {
        "index.html": page_html(
            renderer,
            view,
            qr_prefix="qr/",
            flyer_href="flyer.html",
            shared_url=f"{public_base_url}/t/{view.token}/shared",
        ),
        "flyer.html": flyer_html(renderer, view, qr_prefix="qr/", offline=True),
        "messages.txt": messages_text(view),
    }
    for link in view.links:
        name = quote(link.resource_id, safe="")
        files[f"qr/{name}.svg"] = qr_svg(link.url)
        files[f"qr/{name}.png"] = qr_png(link.url)
    tmp = path.with_suffix(".zip.part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    tmp.replace(path)
    return len(files)
