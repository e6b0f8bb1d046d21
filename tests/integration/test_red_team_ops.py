"""Red-team findings on operations (branch ``attack``, tests/integration/test_red_team.py).

* SQL parameters (email, name) in error messages and logs, and role logs readable by all;
* ``winwin up --port N`` giving every role and link the base URL of port 8000;
* an absolute ``WINWIN_STATE_DIR`` putting the database under the current directory;
* ``POST /api/v1/events`` refusing a batch the contract allows (1000 events of 4 KB);
* extreme staff-supplied dates answering 500 instead of 422;
* SendGrid events dated far in the future kept (the API refuses them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import SQLAlchemyError

from services.config import Settings
from services.db.migrate import upgrade
from services.db.models import Contact
from services.db.session import make_engine, make_sessionmaker
from tests.fakes import sendgrid_artefacts as sg
from tests.integration import red_team
from tests.integration.journeys.helpers import TOKEN, add_template
from tests.integration.tracking.test_sendgrid_webhooks import of, person, post, spooled

STAFF = red_team.STAFF
container, client = red_team.container, red_team.client  # the shared fixtures
_journey = red_team.journey

ROOT = Path(__file__).resolve().parents[2]


def test_red_team_sql_errors_do_not_carry_personal_data_into_logs(tmp_path):
    """RED TEAM (medium, privacy). SQLAlchemy puts the statement's parameters in every
    error message, and the engines are made without ``hide_parameters``. With the
    database locked for 30 s (the quadratic batch above does that), ``POST
    /api/v1/contacts`` answered 500 and ``logs/api.log`` (0644) got
    ``[parameters: ('sentinel-1', ..., 'sentinel.person@secret-diagnosis.example', ...,
    'Sentinel Leukemia Name', ...)]``. The README promises ids and pseudonyms only."""
    url = f"sqlite:///{tmp_path / 'pii.db'}"
    upgrade(url)
    engine = make_engine(url)
    row = {"external_id": "x1", "pseudonym": "p" + "0" * 32, "email": "sentinel@diagnosis.example"}
    row |= {"email_normalized": "sentinel@diagnosis.example", "name": "Sentinel Name"}
    row |= {"attributes": {}, "tags": [], "needs": [], "email_consent": "confirmed"}
    try:
        with make_sessionmaker(engine)() as s, s.begin():
            s.execute(insert(Contact), [row])
        with pytest.raises(SQLAlchemyError) as caught, make_sessionmaker(engine)() as s:
            s.execute(insert(Contact), [row])  # the same key again: an IntegrityError
            s.commit()
    finally:
        engine.dispose()
    logged = str(caught.value)
    assert "sentinel@diagnosis.example" not in logged and "Sentinel Name" not in logged


def test_red_team_role_logs_are_private(tmp_path):
    """RED TEAM (low, with the SQL-parameters finding above: medium). The database is
    0600 in a 0700 folder, but ``winwin up`` makes ``STATE/logs`` 0755 and each role's log
    0644 (umask 022), and those logs get tracebacks with SQL parameters (addresses,
    names), Faust's and SQLAlchemy's messages. Every user of the host can read them."""
    from services.supervisor import Supervisor

    umask = os.umask(0o022)
    settings = Settings(env="dev", database_url=f"sqlite:///{tmp_path / 'up.db'}",
                        state_dir=tmp_path / "state", kafka_bootstrap="127.0.0.1:1")  # fmt: skip
    sup = Supervisor(settings, port=8791)
    try:
        sup.start()  # starts the four roles against a broker that is not there
    finally:
        sup.stop()
        os.umask(umask)
    assert sup.log_dir.stat().st_mode & 0o077 == 0, oct(sup.log_dir.stat().st_mode)
    for log in sup.log_dir.glob("*.log"):
        assert log.stat().st_mode & 0o077 == 0, (log.name, oct(log.stat().st_mode))


def test_red_team_up_port_is_the_port_of_the_links(tmp_path):
    """RED TEAM (low). ``winwin up --port 8791`` prints ``WINWIN is up:
    http://127.0.0.1:8000/`` and gives every role ``WINWIN_PUBLIC_BASE_URL`` of port 8000,
    so every tracked link, unsubscribe link and toolkit URL it makes points at port 8000
    (``winwin demo --port`` gets it right). Without WINWIN_PUBLIC_BASE_URL set, the base
    URL should follow ``--port``."""
    from services.supervisor import Supervisor

    settings = Settings(env="dev", database_url=f"sqlite:///{tmp_path / 'up.db'}",
                        state_dir=tmp_path / "state")  # fmt: skip
    sup = Supervisor(settings, port=8791)
    sup.settings = sup.settings.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})
    sup.stopping.set()  # start nothing: only what the roles would be given
    try:
        sup.start()
    finally:
        sup.stop()
    assert sup.env["WINWIN_PUBLIC_BASE_URL"] == "http://127.0.0.1:8791"


def test_red_team_absolute_state_dir_keeps_the_database_in_it(tmp_path):
    """RED TEAM (low). ``database_url`` defaults to ``sqlite:///./{STATE_DIR}/winwin.db``:
    with ``WINWIN_STATE_DIR=/tmp/x`` the database is ``./tmp/x/winwin.db`` under the
    current directory, while the secrets and logs are in ``/tmp/x``; a CLI command run
    from another directory silently opens another, empty database."""
    state = tmp_path / "state"
    code = (
        "from sqlalchemy import make_url; from services.config import Settings;"
        "print(make_url(Settings(env='dev').database_url).database)"
    )
    env = os.environ | {"WINWIN_STATE_DIR": str(state), "PYTHONPATH": str(ROOT)}
    env.pop("WINWIN_DATABASE_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / out.stdout.strip()).resolve() == state / "winwin.db"


def test_red_team_events_batch_the_contract_allows_is_not_413(client):
    """RED TEAM (low). The contract allows 1-1000 events with ``properties`` up to 4 KB
    each and the README says bodies up to 4 MiB, but ``read_json`` refuses more than
    2 MiB: a valid batch of 1000 events with 3 KB properties (~3.2 MB) gets 413."""
    events = [
        {"event_id": f"big-{i}", "type": "resource.view", "occurred_at": "2017-08-14T10:00:00Z"}
        | {"person_ref": f"fam-{i}", "properties": {"note": "x" * 3000}}
        for i in range(1000)
    ]
    body = json.dumps(events).encode()
    headers = {"Authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    assert 3_000_000 < len(body) < 4 * 1024 * 1024
    r = client.post(
        "/api/v1/events",
        content=body,
        headers=headers,
    )
    assert r.status_code == 202, r.text[:200]
    assert r.json()["accepted"] == 1000
    # the largest properties the contract allows (4096 bytes as UTF-8), sent \u-escaped
    # by a client's default JSON encoder: 3x the bytes, ~12.4 MB in all
    note = {"n": "\u00e9" * 2044}
    assert len(json.dumps(note, separators=(",", ":"), ensure_ascii=False).encode()) == 4096
    widest = [e | {"event_id": f"wide-{i}", "properties": note} for i, e in enumerate(events)]
    r = client.post("/api/v1/events", content=json.dumps(widest).encode(), headers=headers)
    assert r.status_code == 202, r.text[:200]
    assert r.json()["accepted"] == 1000


def test_red_team_campaign_send_at_year_one_is_422_not_500(client, container):
    """RED TEAM (low). ``send_at: 0001-01-01T00:00:00+14:00`` (the issue-13 poison time,
    on campaigns) answers 500 (OverflowError: date value out of range); events refuse it
    with the reason."""
    tid = add_template(container)
    body = {"name": "n", "channel": "email", "template_id": tid}
    body["send_at"] = "0001-01-01T00:00:00+14:00"
    r = client.post("/api/v1/campaigns", json=body, headers=STAFF)
    assert r.status_code == 422, r.status_code


def test_red_team_journey_simulation_over_extreme_dates_is_not_500(client, container):
    """RED TEAM (low). ``POST /api/v1/journeys/{id}/simulate`` with ``from`` 0001-01-01 and
    ``to`` 9999-12-31, or a year-1 time at +14:00, answers 500 (OverflowError)."""
    tid = add_template(container)
    r = client.post("/api/v1/journeys", json=_journey("P7D", tid), headers=STAFF)
    assert r.status_code == 201, r.text
    jid = r.json()["id"]
    for start, end in (("0001-01-01", "9999-12-31"), ("0001-01-01T00:00:00+14:00", "2017-01-01")):
        r = client.post(
            f"/api/v1/journeys/{jid}/simulate",
            json={"from": start, "to": end},
            headers=STAFF,
        )
        assert r.status_code < 500, (start, end, r.status_code)


def test_red_team_webhook_events_dated_far_ahead_are_ignored(client, container):
    """RED TEAM (low). A signed Event Webhook event dated 2199 was kept (the API refuses
    an event more than 5 minutes ahead): it is ignored, the others of the post kept."""
    ahead = datetime(2199, 1, 1, tzinfo=UTC).timestamp()
    items = [
        of(sg.documented_event("open"), "now", sg_event_id="now-1"),
        of(sg.documented_event("open"), "far", sg_event_id="far-1", timestamp=int(ahead)),
    ]
    r = post(client, items)
    assert r.json() == {"accepted": 1, "duplicates": 0, "ignored": 1}, r.text
    assert [record["person"] for record in spooled(container)] == [person("now")]
