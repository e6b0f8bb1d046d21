"""Redirect safety: destinations only from the link table, signed tokens, scanners flagged.

Hypothesis throws tokens and paths at the public endpoints (``//evil.example``,
``/\\evil.example``, ``https:evil.example``, encoded CR/LF, ``javascript:``, overlong,
unicode, tampered genuine tokens): no response ever redirects to anything but a stored
destination (or a path on WINWIN itself), and a tampered token records nothing. Link
scanners still get their redirect; their clicks are flagged, not counted, and shown by
``GET /api/v1/reports/bots``. In process on SQLite; the stream's sink is driven directly
with what the outbox holds (the Kafka path is covered by the reliability tests).
"""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from services.analytics.sink import AttributionSink
from services.db.models import AcceptedEvent, Contact, OutboxMessage, Send
from tests.integration.test_security_access import BROWSER, local_client
from tests.stack import email_campaign

DESTINATIONS = [
    "https://network.example.org/diet",
    "https://network.example.org/a?b=1&c=2",
    "http://toolkit.example.net/x#frag",
]
ATTACKS = [
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https:evil.example",
    "http://evil.example",
    "https://evil.example/%2e%2e",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,x",
    "%0d%0aLocation:%20https://evil.example",
    "\r\nLocation: https://evil.example",
    "%2F%2Fevil.example",
    "..%2F..%2Fevil.example",
    "evil.example",
    "@evil.example",
    "%00",
    "\u2215\u2215evil.example",
    "\uff0f\uff0fevil.example",
    "a" * 5000,
    ".",
    "..",
    "x.y",
    "x.y.z",
    "=.=",
]
SCANNERS = [
    "Mozilla/5.0 (compatible; Barracuda Sentinel (EE))",
    "Proofpoint URL Defense",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "facebookexternalhit/1.1",
    "WhatsApp/2.23.20.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1)",
    "Mimecast URL scanner",
    "Microsoft Office Outlook SafeLinks",
    "",
]


class Clock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    """One app with three stored links, shared by the hypothesis examples."""
    client = local_client(tmp_path_factory.mktemp("redirects"))
    with client:
        tokens = []
        for destination in DESTINATIONS:
            r = client.post("/api/v1/links", json={"destination": destination, "channel": "web"})
            assert r.status_code == 201, r.text
            tokens.append(r.json()["token"])
        yield client, tokens


def _assert_safe(response, what: object) -> None:
    if 300 <= response.status_code < 400:
        location = response.headers.get("location", "")
        own_path = location.startswith("/") and not location.startswith(("//", "/\\"))
        ww = urlsplit(location)
        base = f"{ww.scheme}://{ww.netloc}{ww.path}" + (f"?{ww.query}" if ww.query else "")
        stored = location in DESTINATIONS or any(
            base.startswith(d.split("#")[0]) for d in DESTINATIONS
        )
        assert own_path or stored, (what, response.status_code, location)
        assert "\r" not in location and "\n" not in location
    assert response.status_code < 500, (what, response.status_code)


def _recorded(client) -> int:
    """Events spooled so far, after the gatherer flushed what earlier hits queued."""
    gatherer = client.app.state.container.gatherer
    gatherer.stop()
    with client.app.state.container.sessions() as s:
        count = int(s.scalar(select(func.count()).select_from(AcceptedEvent)) or 0)
    gatherer._stop.clear()
    gatherer.start()
    return count


def _tampered(token: str, data: st.DataObject) -> str:
    i = data.draw(st.integers(0, len(token) - 1))
    alphabet = string.ascii_letters + string.digits + "-_."
    ch = data.draw(st.sampled_from([c for c in alphabet if c != token[i]]))
    return token[:i] + ch + token[i + 1 :]


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_token_or_path_redirects_anywhere_but_a_stored_destination(site, data):
    client, tokens = site
    kind = data.draw(st.sampled_from(["attack", "text", "tampered", "suffix", "path"]))
    if kind == "attack":
        token = data.draw(st.sampled_from(ATTACKS))
    elif kind == "text":
        token = data.draw(st.text(min_size=1, max_size=300))
    elif kind == "tampered":
        token = _tampered(data.draw(st.sampled_from(tokens)), data)
    elif kind == "suffix":
        token = data.draw(st.sampled_from(tokens)) + data.draw(
            st.sampled_from(["/", "//evil.example", "/..", "%2F", "?next=//evil.example"])
        )
    else:
        token = None
    if token is None:
        path = data.draw(st.sampled_from(["", "/"]) | st.sampled_from(ATTACKS)) + data.draw(
            st.sampled_from(["", "/"])
        )
        url = "/" + path.lstrip("/") if not path.startswith("//") else path
    else:
        url = "/r/" + (
            quote(token, safe="/:%?=") if data.draw(st.booleans()) else quote(token, safe="")
        )
    method = data.draw(st.sampled_from(["GET", "HEAD"]))
    before = _recorded(client) if kind == "tampered" else None
    try:
        host = data.draw(st.sampled_from(["testserver", "evil.example"]))
        r = client.request(
            method, url, follow_redirects=False, headers={"User-Agent": BROWSER, "Host": host}
        )
    except Exception as exc:  # an URL the HTTP client itself refuses to send is not a response
        if "Invalid" in type(exc).__name__ or "invalid" in str(exc).lower():
            return
        raise
    _assert_safe(r, (method, url))
    if kind == "tampered":
        assert r.status_code == 404 and "location" not in r.headers
        assert r.headers["referrer-policy"] == "no-referrer"
        assert _recorded(client) == before


def test_a_tampered_token_records_nothing_and_a_genuine_one_exactly_one_click(tmp_path: Path):
    with local_client(tmp_path) as client:
        link = client.post("/api/v1/links", json={"destination": DESTINATIONS[0]}).json()
        token = link["token"]
        assert link["url"].endswith(f"/r/{token}") and DESTINATIONS[0] not in link["url"]
        flips = [
            token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
            for i in range(len(token))
        ]
        for bad in [*flips, token[:-1], token + "A", token.replace(".", ""), token.split(".")[0]]:
            r = client.get(f"/r/{bad}", follow_redirects=False)
            assert r.status_code == 404 and "location" not in r.headers, bad
        r = client.get(f"/r/{token}", follow_redirects=False)
        assert r.status_code == 302 and r.headers["location"] == DESTINATIONS[0]
        assert r.headers["referrer-policy"] == "no-referrer"
    with client.app.state.container.sessions() as s:  # after the lifespan: gatherer flushed
        records = [rec for row in s.scalars(select(OutboxMessage)) for rec in row.records]
    assert len(records) == 1 and records[0]["type"] == "link.click" and records[0]["bot"] is False
    print(
        f"\n[redirect] {len(flips) + 4} tampered tokens: 0 redirects, 0 events; 1 genuine click recorded"
    )


def test_scanners_are_redirected_but_flagged_not_counted_and_reported(tmp_path: Path):
    clock = Clock()
    with local_client(tmp_path, now=clock) as client:
        c = client.app.state.container
        assert (
            client.post(
                "/api/v1/contacts",
                json=[
                    {
                        "external_id": "fam-1",
                        "email": "f1@example.net",
                        "consent": {"email": "confirmed"},
                    }
                ],
            ).status_code
            == 200
        )
        cid = email_campaign(client, {"subject": "Hi", "text": "Hello {{ contact.name }}"})
        link = client.post(
            "/api/v1/links",
            json={"destination": DESTINATIONS[1], "campaign_id": cid, "channel": "email"},
        ).json()
        with c.sessions() as s, s.begin():
            contact = s.scalars(select(Contact)).one()
            s.add(
                Send(
                    id="send-1",
                    campaign_id=cid,
                    contact_id=contact.id,
                    person=contact.pseudonym,
                    status="sent",
                    sent_at=clock.at,
                )
            )
        token = c.tokens.sign("r", link["id"], "send-1")
        sent_at = clock.at
        machines = [
            ("HEAD", BROWSER, 30),
            *(("GET", ua, 30) for ua in SCANNERS),
            ("GET", BROWSER, 1),
        ]
        for method, agent, seconds in [*machines, ("GET", BROWSER, 300)]:
            clock.at = sent_at + timedelta(seconds=seconds)
            r = client.request(
                method, f"/r/{token}", follow_redirects=False, headers={"User-Agent": agent}
            )
            assert r.status_code == 302 and r.headers["location"] == DESTINATIONS[1], agent
    with c.sessions() as s:
        records = [rec for row in s.scalars(select(OutboxMessage)) for rec in row.records]
    AttributionSink(c.sessions).write(records, [])
    with local_client(tmp_path) as client:
        report = client.get("/api/v1/reports/bots").json()
        month = clock.at.strftime("%Y-%m")
        stages = client.get("/api/v1/metrics/stages", params={"from": month, "to": month}).json()
    reasons = {row["reason"]: row["events"] for row in report["rows"]}
    n_flagged = len(machines)
    assert report["flagged"] == n_flagged and report["counted"] == 1, report
    assert reasons["head-request"] == 1 and reasons["no-user-agent"] == 1
    assert reasons["scanner-user-agent"] == len(SCANNERS) - 1
    assert reasons["within-seconds-of-delivery"] == 1
    assert stages["rows"][0]["aware"] == 1  # only the person counts
    print(
        f"\n[bots] {n_flagged} machine hits redirected, flagged and not counted; 1 person counted: {reasons}"
    )
