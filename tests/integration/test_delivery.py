"""Delivery that is safe to interrupt: a dispatcher SIGKILLed mid-campaign and restarted
sends each recipient exactly once; the window between SendGrid's 202 and the commit is
reconciled through the Email Activity API (the fake implements it); 429s, throttling,
pause/resume/cancel and ``send_at`` with a time zone. SQLite and PostgreSQL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from services.bootstrap import Container, bootstrap
from services.bus import topics
from services.campaigns.channels.email import (
    OutgoingEmail,
    SendGridEmailSender,
    SendResult,
    TransientSendError,
)
from services.campaigns.dispatch import UNCERTAIN, Dispatcher, progress
from services.campaigns.schedule import pause, resume
from services.config import Settings
from services.db.migrate import upgrade
from services.db.models import Campaign, Contact, OutboxMessage, Send, Template
from services.db.models_consent import InflightSend
from services.domain.pseudonyms import pseudonymise
from tests.fakes.sendgrid_server import FakeSendGrid
from tests.stack import wait_for

ROOT = Path(__file__).resolve().parents[2]
KEY = "SG.delivery-test"
SECRET = "delivery-test-secret-0123456789"
TOKEN = "delivery-test-token-0123456789"
NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


class Killed(BaseException):
    """Stands for SIGKILL inside one process: nothing after it runs."""


@pytest.fixture
def db_url(database_url: str) -> str:
    upgrade(database_url)
    return database_url


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(api_key=KEY) as server:
        yield server


def settings_for(url: str, tmp_path: Path, host: str, **extra: Any) -> Settings:
    return Settings(
        env="dev", database_url=url, secret_key=SECRET, api_token=TOKEN,
        public_base_url="https://winwin.example.org", sendgrid_api_key=KEY,
        sendgrid_api_host=host, state_dir=tmp_path / "state", **extra,
    )  # fmt: skip


@pytest.fixture
def c(db_url: str, tmp_path: Path, fake: FakeSendGrid) -> Iterator[Container]:
    container = bootstrap(settings_for(db_url, tmp_path, fake.host), now=lambda: NOW)
    yield container
    container.close()


def seed(c: Container, n: int, *, campaign_id: str = "cmp-1", send_at: datetime | None = None,
         status: str = "scheduled", html: str | None = None, groups: int = 1) -> str:  # fmt: skip
    """``n`` confirmed contacts c0..c{n-1}@example.net and one due email campaign."""
    rows = [
        {"external_id": f"c{i}", "pseudonym": pseudonymise(SECRET.encode(), f"c{i}"),
         "email": f"c{i}@example.net", "email_normalized": f"c{i}@example.net",
         "name": f"Person {i}", "role": "parent", "language": "en",
         "attributes": {"g": f"group {i % groups}"},
         "tags": [], "needs": [], "email_consent": "confirmed"}
        for i in range(n)
    ]  # fmt: skip
    with c.sessions() as s, s.begin():
        for start in range(0, n, 5000):
            s.execute(insert(Contact), rows[start : start + 5000])
        s.add(Template(id=f"tpl-{campaign_id}", name="t", channel="email",
                       subject="Hello {{ contact.first_name }}",
                       html=html, text="Hi {{ contact.name }}\nStop: {{ unsubscribe_url }}\n"))  # fmt: skip
        s.flush()
        s.add(Campaign(id=campaign_id, name="Spring", channel="email",
                       template_id=f"tpl-{campaign_id}", resources=[],
                       send_at=send_at or NOW - timedelta(minutes=1), status=status))  # fmt: skip
    return campaign_id


def status_of(c: Container, campaign_id: str) -> str:
    with c.sessions() as s:
        return s.get_one(Campaign, campaign_id).status


def touch_ids(c: Container) -> list[str]:
    with c.sessions() as s:
        rows = s.scalars(select(OutboxMessage.records).where(OutboxMessage.topic == topics.TOUCHES))
        return [r["touch_id"] for records in rows for r in records]


def inflight(c: Container) -> int:
    with c.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(InflightSend)) or 0)


def assert_each_once(fake: FakeSendGrid, c: Container, n: int, campaign_id: str = "cmp-1") -> None:
    delivered = Counter(d.to for d in fake.delivered)
    twice = [a for a, k in delivered.items() if k > 1]
    assert not twice, f"{len(twice)} recipient(s) got the campaign more than once: {twice[:5]}"
    assert len(delivered) == n, f"{n - len(delivered)} recipient(s) got nothing"
    with c.sessions() as s:
        assert progress(s, campaign_id) == {"total": n, "sent": n, "suppressed": 0, "failed": 0}
    ids = touch_ids(c)
    assert len(ids) == len(set(ids)) == n  # one touch per email, none twice
    assert inflight(c) == 0


class DiesAfterAccept:
    """Sends through SendGrid, then "dies" before the dispatcher hears the 202."""

    def __init__(self, inner: SendGridEmailSender, on_call: int, before: bool = False) -> None:
        self.inner, self.on_call, self.before, self.calls = inner, on_call, before, 0

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        self.calls += 1
        if self.calls == self.on_call:
            if not self.before:
                self.inner.send(emails)
            raise Killed
        return self.inner.send(emails)


def sender(fake: FakeSendGrid) -> SendGridEmailSender:
    return SendGridEmailSender(KEY, "outreach@example.org", fake.host)


# --- the SIGKILL test ------------------------------------------------------------------


def test_sigkilled_dispatcher_restarted_sends_each_of_20000_exactly_once(
    db_url: str, tmp_path: Path, fake: FakeSendGrid, c: Container
) -> None:
    n = 20_000
    seed(c, n)
    seed_value = int(os.environ.get("WINWIN_TEST_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed_value)
    env = os.environ | {
        "WINWIN_ENV": "dev", "WINWIN_DATABASE_URL": db_url, "WINWIN_SECRET_KEY": SECRET,
        "WINWIN_API_TOKEN": TOKEN, "WINWIN_STATE_DIR": str(tmp_path / "state"),
        "WINWIN_SENDGRID_API_KEY": KEY, "WINWIN_SENDGRID_API_HOST": fake.host,
        "WINWIN_SENDGRID_RECONCILE_AFTER_SECONDS": "0", "WINWIN_KAFKA_BOOTSTRAP": "",
    }  # fmt: skip
    logs: list[Path] = []

    def start() -> subprocess.Popen[bytes]:
        logs.append(tmp_path / f"dispatcher-{len(logs)}.log")
        with logs[-1].open("wb") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "services.cli", "dispatcher"], cwd=ROOT, env=env,
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    # Kill 1: inside the window — SendGrid accepted request k, the 202 is not back yet.
    kill_at = rng.randrange(1, n // 1000)
    accepted = Counter[str]()
    proc = start()

    def on_accept(emails: list[Any]) -> None:
        accepted["requests"] += 1
        if accepted["requests"] == kill_at:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)

    fake.on_accept = on_accept
    try:
        wait_for(
            lambda: proc.poll() is not None, 180, 0.05, f"request {kill_at} (seed {seed_value})"
        )
        fake.on_accept = None
        assert inflight(c) > 0, "the kill should leave a batch in flight"
        # Kill 2: anywhere — once a random number more emails went out.
        proc = start()
        more = len(fake.delivered) + rng.randrange(1, n - len(fake.delivered))
        wait_for(lambda: len(fake.delivered) >= more or proc.poll() is not None, 180, 0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        # Restart: it reconciles what is in flight and finishes.
        proc = start()
        wait_for(lambda: status_of(c, "cmp-1") == "sent", 300, 0.2, "the campaign to finish")
    except AssertionError:
        print("\n".join(p.read_text(errors="replace")[-3000:] for p in logs))
        raise
    finally:
        fake.on_accept = None
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
    print(f"seed {seed_value}: killed at request {kill_at}, then after {more} emails")
    assert fake.activity_queries >= 1  # it asked SendGrid rather than guessing
    assert_each_once(fake, c, n)


# --- the window, deterministically -----------------------------------------------------


@pytest.mark.parametrize("before", [False, True], ids=["after-202", "before-request"])
def test_a_batch_left_in_flight_is_reconciled_not_resent_blindly(
    c: Container, fake: FakeSendGrid, before: bool
) -> None:
    seed(c, 25)
    dying = DiesAfterAccept(sender(fake), on_call=2, before=before)
    with pytest.raises(Killed):
        Dispatcher(c, dying, batch_size=10, reconcile_after=0).dispatch_due(NOW)
    assert len(fake.delivered) == (10 if before else 20) and inflight(c) == 10

    assert Dispatcher(c, sender(fake), batch_size=10, reconcile_after=0).dispatch_due(NOW) == (
        15 if before else 15  # after-202: 10 reconciled as sent + 5 new; before: 10 + 5 resent
    )
    assert fake.activity_queries == 1
    assert status_of(c, "cmp-1") == "sent"
    assert_each_once(fake, c, 25)


def test_a_young_in_flight_batch_waits_and_the_rest_still_goes(
    c: Container, fake: FakeSendGrid
) -> None:
    seed(c, 30)
    with pytest.raises(Killed):
        Dispatcher(c, DiesAfterAccept(sender(fake), on_call=1), batch_size=10).dispatch_due(NOW)
    later = Dispatcher(c, sender(fake), batch_size=10, reconcile_after=600)
    assert later.dispatch_due(NOW) == 20  # the others go; the young batch is left alone
    assert fake.activity_queries == 0 and inflight(c) == 10
    assert status_of(c, "cmp-1") == "sending"
    c.now = lambda: NOW + timedelta(minutes=11)
    assert later.dispatch_due(NOW + timedelta(minutes=11)) == 10
    assert status_of(c, "cmp-1") == "sent"
    assert_each_once(fake, c, 30)


def test_without_email_activity_uncertain_sends_fail_rather_than_duplicate(
    c: Container, fake: FakeSendGrid
) -> None:
    seed(c, 12)
    with pytest.raises(Killed):
        Dispatcher(c, DiesAfterAccept(sender(fake), on_call=1), batch_size=5).dispatch_due(NOW)
    fake.activity_available = False
    Dispatcher(c, sender(fake), batch_size=5, reconcile_after=0).dispatch_due(NOW)
    assert Counter(Counter(d.to for d in fake.delivered).values()) == {1: 12}
    with c.sessions() as s:
        assert progress(s, "cmp-1") == {"total": 12, "sent": 7, "suppressed": 0, "failed": 5}
        errors = set(s.scalars(select(Send.error).where(Send.status == "failed")))
    assert errors == {UNCERTAIN}
    assert status_of(c, "cmp-1") == "sent" and inflight(c) == 0


def test_a_timeout_is_reconciled_not_retried_blindly(c: Container, fake: FakeSendGrid) -> None:
    seed(c, 8)

    class TimesOutAfterAccept:
        def __init__(self) -> None:
            self.inner, self.calls = sender(fake), 0

        def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
            self.calls += 1
            if self.calls == 1:
                self.inner.send(emails)
                raise TransientSendError("SendGrid unreachable: timed out") from TimeoutError()
            return self.inner.send(emails)

    flaky = TimesOutAfterAccept()
    dispatcher = Dispatcher(c, flaky, batch_size=4, sleep=lambda s: None, reconcile_after=0)
    assert dispatcher.dispatch_due(NOW) == 0  # nothing retried in the dark
    assert inflight(c) == 4
    assert dispatcher.dispatch_due(NOW) == 8  # 4 reconciled as sent, 4 sent
    assert_each_once(fake, c, 8)


# --- rate limits, throttling, pause, cancel, send_at -----------------------------------


def test_429s_with_rate_limit_headers_slow_down_without_loss_or_duplicates(
    c: Container, fake: FakeSendGrid
) -> None:
    seed(c, 60, html="<p>{{ contact.attributes.g }} {{ contact.name }}</p>", groups=3)
    fake.rate_limit(3, 0.5)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    assert Dispatcher(c, sender(fake), batch_size=10, sleep=sleep).dispatch_due(NOW) == 60
    assert waits and all(0 < w <= 1.5 for w in waits)  # X-RateLimit-Reset, not a guess
    assert fake.request_count > len(fake.accepted_bodies)
    assert_each_once(fake, c, 60)


def test_throttle_spaces_requests_to_the_max_rate(c: Container, fake: FakeSendGrid) -> None:
    seed(c, 50)
    clock = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    dispatcher = Dispatcher(
        c, sender(fake), batch_size=10, sleep=sleep, clock=lambda: clock[0], max_rate=20
    )
    assert dispatcher.dispatch_due(NOW) == 50
    assert waits == pytest.approx([0.5, 0.5, 0.5, 0.5])  # 10 emails per 0.5 s = 20/s
    assert_each_once(fake, c, 50)


def test_pause_stops_between_batches_and_resume_finishes(c: Container, fake: FakeSendGrid) -> None:
    seed(c, 30)

    class PausesAfterFirst:
        def __init__(self) -> None:
            self.inner, self.calls = sender(fake), 0

        def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
            self.calls += 1
            if self.calls == 1:
                with c.sessions() as s, s.begin():
                    pause(s, s.get_one(Campaign, "cmp-1"))
            return self.inner.send(emails)

    assert Dispatcher(c, PausesAfterFirst(), batch_size=10).dispatch_due(NOW) == 10
    assert status_of(c, "cmp-1") == "paused"
    assert Dispatcher(c, sender(fake)).dispatch_due(NOW) == 0
    with c.sessions() as s, s.begin():
        resume(s, s.get_one(Campaign, "cmp-1"))
    assert status_of(c, "cmp-1") == "sending"
    assert Dispatcher(c, sender(fake), batch_size=10).dispatch_due(NOW) == 20
    assert_each_once(fake, c, 30)


def test_send_at_with_a_time_zone_is_honoured(c: Container, fake: FakeSendGrid) -> None:
    # 14:30 in Berlin (UTC+1 in March) is 13:30 UTC: not due at 13:00 UTC, due at 13:31.
    local = datetime.fromisoformat("2024-03-01T14:30:00+01:00")
    seed(c, 3, status="draft")
    with c.sessions() as s, s.begin():
        from services.campaigns.schedule import schedule

        schedule(s, s.get_one(Campaign, "cmp-1"), local, NOW)
    dispatcher = Dispatcher(c, sender(fake))
    assert dispatcher.dispatch_due(datetime(2024, 3, 1, 13, 0, tzinfo=UTC)) == 0
    assert status_of(c, "cmp-1") == "scheduled"
    assert dispatcher.dispatch_due(datetime(2024, 3, 1, 13, 31, tzinfo=UTC)) == 3
    assert_each_once(fake, c, 3)


# --- languages, staff API and CLI -----------------------------------------------------


def test_each_contact_gets_their_language_variant_else_the_default(
    c: Container, fake: FakeSendGrid
) -> None:
    from fastapi.testclient import TestClient

    from services.api import create_app

    seed(c, 0, status="draft")
    languages = {"a": "es", "b": "es-MX", "c": "pt_BR", "d": "fr", "e": None}
    with c.sessions() as s, s.begin():
        s.execute(insert(Contact), [
            {"external_id": k, "pseudonym": pseudonymise(SECRET.encode(), k), "email": f"{k}@example.net",
             "email_normalized": f"{k}@example.net", "name": k.upper(), "language": lang,
             "attributes": {}, "tags": [], "needs": [], "email_consent": "confirmed"}
            for k, lang in languages.items()
        ])  # fmt: skip
    api = TestClient(create_app(c), headers={"Authorization": f"Bearer {TOKEN}"})
    url = "/api/v1/templates/tpl-cmp-1/variants"
    es = {"subject": "Hola {{ contact.first_name }}", "text": "Hola\n{{ unsubscribe_url }}"}
    assert api.put(f"{url}/es", json=es).status_code == 200
    pt = {"subject": "Olá", "text": "Olá {{ contact.name }}"}
    assert api.put(f"{url}/pt-BR", json=pt).json()["language"] == "pt-br"
    assert api.put(f"{url}/de", json={"subject": "x", "text": "{{ nope }}"}).status_code == 422
    assert api.put(f"{url}/de", json={"text": "no subject"}).status_code == 422
    assert api.put("/api/v1/templates/nope/variants/es", json=es).status_code == 404
    assert [v["language"] for v in api.get(url).json()] == ["es", "pt-br"]
    assert api.post("/api/v1/campaigns/cmp-1/resume").status_code == 409
    assert api.post("/api/v1/campaigns/cmp-1/schedule", json={}).json()["status"] == "scheduled"
    assert api.post("/api/v1/campaigns/cmp-1/pause").json()["status"] == "paused"
    assert api.post("/api/v1/campaigns/cmp-1/resume").json()["status"] == "scheduled"

    assert Dispatcher(c, sender(fake)).dispatch_due(NOW) == 5
    subjects = {d.to.split("@")[0]: d.subject for d in fake.delivered}
    assert subjects == {"a": "Hola A", "b": "Hola B", "c": "Olá", "d": "Hello D", "e": "Hello E"}


def test_campaign_cli_creates_lists_schedules_and_cancels(
    db_url: str, tmp_path: Path, fake: FakeSendGrid, c: Container, capsys: Any
) -> None:
    import argparse

    from services.campaigns.cli import run_campaign_command
    from services.errors import UsageError

    settings = settings_for(db_url, tmp_path, fake.host, timezone="Europe/Berlin")
    spec = tmp_path / "spring.yaml"
    spec.write_text(
        "name: Spring digest\nchannel: email\naudience: {attr: language, eq: es}\n"
        "send_at: 2024-03-01T14:30:00\n"
        "template:\n  name: digest\n  subject: 'Hello {{ contact.first_name }}'\n  text: 'Hi'\n"
        "  variants:\n    es: {subject: 'Hola', text: 'Hola'}\n"
    )

    def cli(action: str, **kw: Any) -> int:
        return run_campaign_command(settings, argparse.Namespace(campaign_command=action, **kw))

    assert cli("create", file=str(spec)) == 0
    campaign_id = capsys.readouterr().out.split()[1]
    with c.sessions() as s:
        made = s.get_one(Campaign, campaign_id)
        assert made.status == "draft" and made.audience == {"attr": "language", "eq": "es"}
        at = made.send_at if made.send_at.tzinfo else made.send_at.replace(tzinfo=UTC)
        assert at == datetime(2024, 3, 1, 13, 30, tzinfo=UTC)  # 14:30 in Berlin
    assert cli("schedule", id=campaign_id, at="2024-03-02T09:00:00+00:00") == 0
    assert "scheduled" in capsys.readouterr().out
    assert cli("list") == 0
    listing = capsys.readouterr().out
    assert campaign_id in listing and "2024-03-02 09:00" in listing and "Spring digest" in listing
    assert cli("cancel", id=campaign_id) == 0
    assert status_of(c, campaign_id) == "cancelled"
    with pytest.raises(UsageError, match="only draft or scheduled"):
        cli("schedule", id=campaign_id, at=None)
    with pytest.raises(UsageError, match="not found"):
        cli("cancel", id="nope")
    spec.write_text(
        "name: x\nchannel: email\ntemplate: {name: t, subject: s, text: '{{ nope }}'}\n"
    )
    with pytest.raises(UsageError, match="does not render"):
        cli("create", file=str(spec))
    with pytest.raises(UsageError, match="no such file"):
        cli("create", file=str(tmp_path / "missing.yaml"))
