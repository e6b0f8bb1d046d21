"""Tighter defaults, in process on a fresh SQLite database (no Kafka needed):

* ``/docs`` is served offline: no URL outside this server in its page, every asset it
  names answered by this server (FastAPI's default loads them from a CDN).
* Consent comes back only through the person: after an unsubscribe, staff re-posting
  the contact with another consent leave it unsubscribed and are told so.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from services.db.models import ConsentChange, Contact
from services.tracking.consent import suppress_address
from tests.integration.test_security_access import local_client

URL_IN_PAGE = re.compile(r"""(?:src|href|url)\s*[=:]\s*["']([^"']+)["']""")


def test_docs_are_served_offline(tmp_path: Path) -> None:
    with local_client(tmp_path, authorized=False) as client:
        page = client.get("/docs")
        assert page.status_code == 200 and "SwaggerUIBundle" in page.text
        assert "http://" not in page.text and "https://" not in page.text, page.text
        urls = URL_IN_PAGE.findall(page.text)
        assert {"/openapi.json", "/docs/assets/swagger-ui-bundle.js"} <= set(urls)
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url
            r = client.get(url)
            assert r.status_code == 200 and len(r.content) > 100, url
        assert '"validatorUrl": null' in page.text  # no badge fetched from swagger.io
        assert client.get("/redoc").status_code == 404  # ReDoc's page needs a CDN


def test_staff_cannot_give_back_a_consent_the_person_withdrew(tmp_path: Path) -> None:
    ann = {"external_id": "ann", "email": "ann@example.org", "consent": {"email": "confirmed"}}
    bo = {"external_id": "bo", "email": "bo@example.org", "consent": {"email": "unconfirmed"}}
    with local_client(tmp_path) as client:
        assert client.post("/api/v1/contacts", json=[ann, bo]).json()["created"] == 2
        c = client.app.state.container
        with c.sessions() as session, session.begin():  # the SendGrid unsubscribe path
            suppress_address(session, "Ann@Example.org", "unsubscribe")

        r = client.post("/api/v1/contacts", json=[ann | {"name": "Ann B."}, bo | {
            "consent": {"email": "confirmed"}}])  # fmt: skip
        assert r.status_code == 200
        assert r.json() == {
            "created": 0,
            "updated": 2,
            "kept_unsubscribed": 1,
            "unknown_guardians": 0,
        }
        again = ann | {"consent": {"email": "unconfirmed"}}
        assert client.post("/api/v1/contacts", json=[again]).json()["kept_unsubscribed"] == 1

        shown = {x["external_id"]: x for x in client.get("/api/v1/contacts").json()}
        assert shown["ann"]["consent"] == {"email": "unsubscribed"}
        assert shown["ann"]["name"] == "Ann B."  # the rest of the record is updated
        assert shown["bo"]["consent"] == {"email": "confirmed"}  # no unsubscribe: staff may
        with c.sessions() as session:
            history = session.execute(
                select(ConsentChange.status, ConsentChange.source)
                .join(Contact, Contact.id == ConsentChange.contact_id)
                .where(Contact.external_id == "ann")
                .order_by(ConsentChange.id)
            ).all()
        assert [tuple(h) for h in history] == [
            ("confirmed", "api"),
            ("unsubscribed", "sendgrid:unsubscribe"),
        ]
