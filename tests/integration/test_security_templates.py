"""Template injection at the API: every attack payload is refused at save (422, with the
reason) and by preview, nothing is stored, and a contact name carrying ``<script>`` is
escaped in HTML. The payloads are those of tests/unit/campaigns/test_rendering.py (Jinja2's
own security tests ported, plus the well-known SSTI payloads)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

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


#: 10**8 loop iterations: tens of seconds in Jinja, and fast nowhere.
SLOW_LOOP = "{% for i in range(100000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}done"


def test_a_slow_template_is_refused_at_preview_and_save_while_the_api_keeps_answering(
    tmp_path: Path,
):
    with local_client(tmp_path, render_timeout_seconds=2) as client:
        answers: dict[str, Any] = {}

        def preview() -> None:
            answers["preview"] = client.post("/api/v1/templates/preview", json={"text": SLOW_LOOP})

        rendering = threading.Thread(target=preview)
        rendering.start()
        health = [client.get("/healthz").status_code for _ in range(3)]
        still_rendering = rendering.is_alive()
        rendering.join()
        assert health == [200, 200, 200] and still_rendering
        limit = "rendering took longer than the 2 s limit (WINWIN_RENDER_TIMEOUT_SECONDS)"
        assert answers["preview"].status_code == 422 and limit in answers["preview"].text
        body = {"name": "slow", "channel": "email", "subject": "Hi", "text": SLOW_LOOP}
        saved = client.post("/api/v1/templates", json=body)
        assert saved.status_code == 422 and limit in saved.text
        with client.app.state.container.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Template)) == 0


def test_templates_building_huge_values_or_output_are_refused(tmp_path: Path):
    cases = {
        "{{ 'x'|center(10**7) }}": "|center would build more than 1,000,000 characters",
        "{% for i in range(20000) %}{{ 'x' * 100 }}{% endfor %}": "over the 1,000,000-byte limit",
        "{{ ((((10**64)**64)**64)**64) > 1 }}": "'**' would build a number over 100,000 bits",
    }
    with local_client(tmp_path) as client:
        for text, reason in cases.items():
            p = client.post("/api/v1/templates/preview", json={"text": text})
            assert p.status_code == 422 and reason in p.text, (text, p.status_code, p.text[:200])
            body = {"name": "big", "channel": "social", "text": text}
            saved = client.post("/api/v1/templates", json=body)
            assert saved.status_code == 422 and reason in saved.text, (text, saved.text[:200])
