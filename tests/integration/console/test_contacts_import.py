"""The console's contacts CSV import over HTTP (issue 16), on SQLite and PostgreSQL: upload
→ a job → its progress until done → the counts and the rejected-rows report. A hostile
file (bytes that are not UTF-8, a line of 200,000 characters, formulas, a row too wide,
a bad address) is imported row by row. No Kafka."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.domain.roles import Role
from services.spreadsheet import FORMULA_STARTS
from tests.integration.console.test_console_api import cheap_argon2
from tests.integration.test_accounts import audit_rows, make_account, sign_in_as
from tests.integration.test_security_sessions import BEARER, Clock, client_on, same_site

__all__ = ["cheap_argon2"]
IMPORT = "/api/v1/contacts/import"
HOSTILE = b"".join(
    [
        b"external_id,email,name,consent_email,team\n",
        b'fam-1,rosa@family.example,Rosa,confirmed,=HYPERLINK("http://evil")\n',
        b"fam-2,ben@family.example,Ben \xff\xfe Ode,,blue\n",  # line 3: not UTF-8
        b"fam-3,," + b"x" * 200_000 + b",,\n",  # line 4: too long
        b"=cmd|' /C calc'!A0,,Formula Person,,\n",  # an id that looks like a formula
        b"fam-5,not-an-address,Eve,,,extra,cells\n",  # line 6: too wide
        b"fam-6,not-an-address,Eve,,\n",  # line 7: bad email
        b"fam-7,,Kim,maybe,\n",  # line 8: unknown consent
        b"fam-8,,Lu,,\n",
    ]
)


@pytest.fixture
def client(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    with client_on(tmp_path, Clock(), database_url) as client:
        make_account(client, "sam@net.example", Role.STAFF)
        make_account(client, "ali@net.example", Role.ANALYST)
        yield client


def finished(client: TestClient, job: dict[str, Any]) -> dict[str, Any]:
    """Polls the job as the console's progress bar does, until it is no longer running."""
    for _ in range(400):
        job = client.get(f"{IMPORT}/{job['id']}").json()
        if job["state"] != "running":
            return job
        time.sleep(0.05)
    raise AssertionError(f"the import never finished: {job}")


def test_staff_import_a_hostile_csv_and_download_every_rejected_row(client: TestClient):
    csrf = sign_in_as(client, "sam@net.example")
    headers = same_site(csrf) | {"Content-Type": "text/csv"}
    started = client.post(IMPORT, content=HOSTILE, headers=headers)
    assert started.status_code == 202, started.text
    assert started.json()["rows_total"] == 8  # lines after the header
    done = finished(client, started.json())
    assert done["state"] == "done" and done["rows_read"] == done["rows_total"]
    assert (done["created"], done["rejected"]) == (3, 5)
    saved = {c["external_id"] for c in client.get("/api/v1/contacts").json()}
    assert saved == {"fam-1", "=cmd|' /C calc'!A0", "fam-8"}
    report = client.get(f"{IMPORT}/{done['id']}/rejected.csv")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    assert "attachment" in report.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(report.text)))
    assert rows[0] == ["line", "reason"]
    reasons = {int(line): reason for line, reason in rows[1:]}
    assert sorted(reasons) == [3, 4, 6, 7, 8]
    assert "byte 0xFF" in reasons[3] and "longer than" in reasons[4]
    assert "7 cells" in reasons[6] and reasons[7].startswith("email:")
    assert not [cell for row in rows for cell in row if cell.startswith(FORMULA_STARTS)]
    assert "x" * 1000 not in report.text  # the long line is not echoed
    kinds = [(e.actor_id, e.action, e.object_kind, e.object_id) for e in audit_rows(client)]
    assert ("sam@net.example", "import", "contact_imports", done["id"]) in kinds


def test_a_form_upload_updates_and_an_unreadable_file_is_refused_at_once(client: TestClient):
    csrf = sign_in_as(client, "sam@net.example")
    first = b"external_id,name\nfam-1,Rosa\n"
    assert finished(client, client.post(IMPORT, content=first, headers=BEARER | {
        "Content-Type": "text/csv"}).json())["created"] == 1  # fmt: skip
    form = {"file": ("people.csv", b"external_id,name\r\nfam-1,Rosa Diaz\r\nfam-2,Ben\r\n")}
    started = client.post(IMPORT, files=form, headers=same_site(csrf))
    assert started.status_code == 202, started.text
    done = finished(client, started.json())
    assert (done["created"], done["updated"], done["rejected"]) == (1, 1, 0)
    assert client.get(f"{IMPORT}/{done['id']}/rejected.csv").text == "line,reason\n"
    assert client.get("/api/v1/contacts/fam-1").json()["name"] == "Rosa Diaz"
    no_id = client.post(IMPORT, content=b"email\nrosa@x.example\n", headers=BEARER | {
        "Content-Type": "text/csv"})  # fmt: skip
    assert no_id.status_code == 422 and "external_id" in no_id.text
    assert client.get(f"{IMPORT}/nothing-here").status_code == 404


def test_only_staff_import_and_only_from_this_site(client: TestClient):
    csv_body = {"content": b"external_id\nfam-1\n"}
    csrf = sign_in_as(client, "sam@net.example")
    plain = same_site(csrf) | {"Content-Type": "text/plain"}  # a cross-site "simple request"
    assert client.post(IMPORT, headers=plain, **csv_body).status_code == 415
    no_token = {"Origin": "http://testserver", "Content-Type": "text/csv"}
    assert client.post(IMPORT, headers=no_token, **csv_body).status_code == 403
    csrf = sign_in_as(client, "ali@net.example")
    refused = client.post(
        IMPORT, headers=same_site(csrf) | {"Content-Type": "text/csv"}, **csv_body
    )
    assert refused.status_code == 403
    assert client.get(f"{IMPORT}/any-job").status_code == 403  # people: staff work
    assert client.get("/api/v1/contacts", headers=BEARER).json() == []
