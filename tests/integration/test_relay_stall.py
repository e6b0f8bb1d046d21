"""A frozen relay is noticed: `winwin up` kills a relay whose heartbeat file is older
than ``WINWIN_RELAY_STALL_SECONDS`` (and restarts it like one that died), and /readyz
says not ready while an outbox row has waited longer than that (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.api import _relay_sending
from services.bootstrap import bootstrap
from services.config import Settings
from services.db.migrate import upgrade
from services.db.models import OutboxMessage
from services.processes import Heartbeat, heartbeat_age, heartbeat_path
from services.supervisor import Child, Supervisor


def test_a_relay_whose_heartbeat_is_too_old_is_killed_and_due_again(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'winwin.db'}",
        state_dir=tmp_path,
        relay_stall_seconds=5,
    )
    sup = Supervisor(settings, log_dir=tmp_path / "logs")
    relay = Child("relay", [])
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    relay.proc = subprocess.Popen(sleep, start_new_session=True)  # as the supervisor starts it
    sup.children["relay"] = relay
    beat = heartbeat_path(tmp_path, "relay", relay.proc.pid)
    try:
        beat.parent.mkdir(parents=True)
        beat.touch()
        sup.watch()  # fresh: left alone
        assert relay.proc is not None and relay.proc.poll() is None
        os.utime(beat, (time.time() - 6, time.time() - 6))  # no beat for 6 s
        sup.stall_checked = -1e9
        sup.watch()
        assert relay.proc is None and relay.due is not None  # killed; restarted when due
        assert not beat.exists()
    finally:
        if relay.proc is not None:
            relay.proc.kill()


def test_a_heartbeat_is_touched_at_most_once_per_interval(tmp_path: Path) -> None:
    heartbeat = Heartbeat(tmp_path, "relay", every=3600)
    assert heartbeat_age(heartbeat.path) is None
    heartbeat.beat()
    os.utime(heartbeat.path, (0, 0))
    heartbeat.beat()  # within the interval: not touched again
    assert heartbeat_age(heartbeat.path) > 3600  # type: ignore[operator]
    heartbeat.remove()
    assert heartbeat_age(heartbeat.path) is None


def test_readyz_says_the_relay_lags_while_an_outbox_row_waits_too_long(
    database_url: str, tmp_path: Path
) -> None:
    upgrade(database_url)
    settings = Settings(database_url=database_url, state_dir=tmp_path, relay_stall_seconds=60)
    container = bootstrap(settings)
    assert _relay_sending(container)  # an empty outbox
    now = datetime.now(UTC)
    with container.sessions() as session, session.begin():
        old = OutboxMessage(topic="engagement", records=[], created_at=now - timedelta(minutes=2))
        session.add_all([old, OutboxMessage(topic="engagement", records=[], created_at=now)])
    assert not _relay_sending(container)
    with container.sessions() as session, session.begin():
        session.get(OutboxMessage, old.id).published_at = now  # type: ignore[union-attr]
    assert _relay_sending(container)  # sent: kept only until the sinks stored it
