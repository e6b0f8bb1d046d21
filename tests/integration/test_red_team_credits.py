"""Red-team findings H1 and M1 (branch ``attack``): one person's history must not make
the stored credits grow with its square, and a journey delay beyond the calendar is
refused at the door rather than poisoning the stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from services.analytics.sink import AttributionSink
from services.db.migrate import upgrade
from services.db.models import Credit
from services.db.session import make_engine, make_sessionmaker
from tests.integration import red_team
from tests.integration.analytics.conftest import event, person
from tests.integration.journeys.helpers import add_template

STAFF = red_team.STAFF
container, client = red_team.container, red_team.client  # the shared fixtures
_journey = red_team.journey


def _credit_rows(tmp_path: Path, n: int) -> int:
    """Credit rows stored for one person's ``n`` campaign events (one a minute)."""
    url = f"sqlite:///{tmp_path / f'quad-{n}.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        sessions = make_sessionmaker(engine)
        t0, who = datetime(2017, 6, 1, tzinfo=UTC), person(7)
        events = [
            event(f"e{i}", "resource.view", t0 + timedelta(minutes=i), who, "c3") for i in range(n)
        ]
        AttributionSink(sessions).write(events, [])
        with sessions() as s:
            return int(s.scalar(select(func.count()).select_from(Credit)) or 0)
    finally:
        engine.dispose()


def test_red_team_one_persons_clicks_do_not_grow_credits_quadratically(tmp_path):
    """RED TEAM (high, public DoS). Every click on a campaign link, toolkit visit or API
    event with a ``campaign_id`` is a touch AND a stage event, and each stage event
    credited every earlier touch in the window in 3 of the 5 models (1,500 clicks from
    one cookie: 3.4 M credit rows). Storage must grow linearly with a person's events:
    doubling them may about double the credits, not quadruple them."""
    small, large = _credit_rows(tmp_path, 150), _credit_rows(tmp_path, 300)
    assert large <= 2.5 * small, f"150 events: {small} credit rows; 300 events: {large}"


def test_red_team_journey_delay_beyond_the_calendar_is_refused(client, container):
    """RED TEAM (medium-high). ``"delay": "P99999999D"`` was stored (201), then every
    ``resource.view`` made the journeys hook after the sink raise ``OverflowError``: the
    already-stored events were dead-lettered one by one. Refuse the delay at the door."""
    tid = add_template(container)
    r = client.post("/api/v1/journeys", json=_journey("P99999999D", tid), headers=STAFF)
    assert r.status_code == 422, r.text[:200]
