"""Template injection at the API: every attack payload is refused at save (422, with the
reason) and by preview, nothing is stored, and a contact name carrying ``<script>`` is
escaped in HTML. The payloads are those of tests/unit/campaigns/test_rendering.py (Jinja2's
own security tests ported, plus the well-known SSTI payloads)."""

from __future__ import annotations

from pathlib import Path

import jinja2
from sqlalchemy import func, select

from services.db.models import Template
from tests.integration.test_security_access import local_client
from tests.unit.campaigns.test_rendering import ATTACKS


def test_jinja2_is_at_least_3_1_6():
    major, minor, patch = (int(x) for x in jinja2.__version__.split(".")[:3])
    assert (major, minor, patch) >= (3, 1, 6)


def test_attack_templates_are_refused_at_save_and_preview(tmp_path: Path):
    refused = 0
    with local_client(tmp_path) as client:
        for attack in ATTACKS:
            for part in ("subject", "html", "text"):
                body = {
                    "name": "x",
                    "channel": "email",
                    "subject": "Hi",
                    "html": "<p>hi</p>",
                    "text": "hi",
                }
                body[part] = attack
                r = client.post("/api/v1/templates", json=body)
                assert r.status_code == 422, (attack, part, r.status_code, r.text[:300])
                assert part in r.text, r.text
                p = client.post(
                    "/api/v1/templates/preview", json={k: v for k, v in body.items() if k != "name"}
                )
                assert p.status_code == 422, (attack, part, p.status_code, p.text[:300])
                refused += 2
        with client.app.state.container.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Template)) == 0
    print(
        f"\n[templates] {len(ATTACKS)} payloads x 3 parts: {refused} save/preview attempts, all 422"
    )


def test_a_contact_name_with_script_is_escaped_in_html(tmp_path: Path):
    evil = '<script>alert("x")</script>'
    with local_client(tmp_path) as client:
        body = {
            "subject": "Hi {{ contact.name }}",
            "html": "<p>Hi {{ contact.name }}</p>",
            "text": "Hi {{ contact.name }}",
            "context": {
                "contact": {"name": evil, "first_name": evil, "language": "en", "attributes": {}}
            },
        }
        r = client.post("/api/v1/templates/preview", json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert "<script>" not in out["html"] and "&lt;script&gt;" in out["html"]
        assert out["text"] == f"Hi {evil}"  # plain text is not HTML: nothing to escape
