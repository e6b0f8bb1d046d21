"""Reproduce the published result on real Kafka: from the August 2017 baseline, people
aware ×4.0, using ×4.1, producing ×2.7 — posted as the network's site would post them
(unordered, with duplicates, bot hits and unknown types mixed in), read back exactly
through the API and `winwin report stages`."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from services.db.models import EngagementEvent
from services.domain.periods import period_range
from tests.stack import ROOT, Stack, wait_for

pytestmark = pytest.mark.kafka
MONTHS = period_range("2017-08", "2018-07", "month")
BASE = {"aware": 100, "use": 50, "produce": 30}
FINAL = {"aware": 400, "use": 205, "produce": 81}  # ×4.0, ×4.1, ×2.7
STAGE_TYPES = {
    "aware": ["page.view", "email.open", "link.click"],
    "use": ["resource.view", "resource.download"],
    "produce": ["contribution.submitted", "story.shared"],
}


def ground_truth() -> dict[str, dict[str, int]]:
    """Monthly unique people per stage, growing from BASE to FINAL."""
    truth = {}
    for i, month in enumerate(MONTHS):
        f = i / (len(MONTHS) - 1)
        truth[month] = {s: round(BASE[s] + (FINAL[s] - BASE[s]) * f) for s in BASE}
    return truth


def network_events(truth: dict[str, dict[str, int]], rng: random.Random) -> list[dict]:
    """Events whose unique people per month and stage are exactly ``truth``."""
    events: list[dict] = []
    n = 0
    for month, want in truth.items():
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
        people = [
            f"fam-{rng.randrange(2000):04d}"
            if rng.random() < 0.5
            else f"v:site-{rng.randrange(10**6)}"
            for _ in range(want["aware"] * 2)
        ]
        people = list(dict.fromkeys(people))[: want["aware"]]
        rng.shuffle(people)
        for k, who in enumerate(people):  # the first `produce` produce, the first `use` use ...
            stage = "produce" if k < want["produce"] else "use" if k < want["use"] else "aware"
            for _ in range(rng.randint(1, 3)):  # several events of that stage: still one person
                at = start + timedelta(days=rng.randrange(28), seconds=rng.randrange(86400))
                n += 1
                events.append(
                    {
                        "event_id": f"site-{n}",
                        "type": rng.choice(STAGE_TYPES[stage]),
                        "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "person_ref": who,
                    }
                )
        for _ in range(10):  # crawlers and unknown types count for nothing
            n += 1
            at = start + timedelta(days=rng.randrange(28))
            events.append(
                {
                    "event_id": f"site-{n}",
                    "type": "resource.view",
                    "person_ref": f"v:bot-{n}",
                    "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "properties": {"user_agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"},
                }
            )
            n += 1
            events.append(
                {
                    "event_id": f"site-{n}",
                    "type": "newsletter.forwarded",
                    "person_ref": f"v:x-{n}",
                    "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            )
    return events


@pytest.fixture
def stack(kafka_bootstrap, database_url, tmp_path):
    s = Stack(kafka_bootstrap, database_url, tmp_path)
    yield s
    s.close()


def test_published_growth_factors_are_reproduced_exactly(stack: Stack):
    rng = random.Random(2017)
    truth = ground_truth()
    events = network_events(truth, rng)
    unique = len(events)
    sent = events + rng.sample(events, len(events) // 10)  # the site retries: duplicates
    rng.shuffle(sent)  # and posts out of order
    stack.start_relay()
    stack.start_worker()
    with stack.client() as client:
        accepted = duplicates = 0
        for start in range(0, len(sent), 1000):
            out = client.post("/api/v1/events", json=sent[start : start + 1000]).json()
            assert out["rejected"] == []
            accepted, duplicates = accepted + out["accepted"], duplicates + out["duplicates"]
        assert (accepted, duplicates) == (unique, len(sent) - unique)
        wait_for(
            lambda: stack.count(EngagementEvent) == unique, 120, 0.3, what="every event in SQL"
        )
        params = {"period": "month", "from": MONTHS[0], "to": MONTHS[-1]}
        data = wait_for(
            lambda: (
                (d := client.get("/api/v1/metrics/stages", params=params).json())
                and d["rows"][-1]["produce"] == FINAL["produce"]
                and d
            ),
            30,
            what="final counts",
        )
    expected_rows = [{"period": m, **truth[m]} for m in MONTHS]
    assert data["rows"] == expected_rows
    assert data["baseline"] == "2017-08"
    assert data["growth"] == {"aware": 4.0, "use": 4.1, "produce": 2.7}

    report = json.loads(_report(stack, "json"))
    assert report["rows"] == expected_rows
    assert report["growth"] == {"aware": 4.0, "use": 4.1, "produce": 2.7}
    lines = _report(stack, "csv").splitlines()
    assert lines[1] == "2017-08,100,50,30" and lines[-1] == "2018-07,400,205,81"


def _report(stack: Stack, fmt: str) -> str:
    """`winwin report stages` for the whole range, as a user runs it."""
    args = ["report", "stages", "--from", MONTHS[0], "--to", MONTHS[-1], "--format", fmt]
    out = subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        env=os.environ | stack.env_vars,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout
