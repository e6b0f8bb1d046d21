"""The ephemeral outbox's pruning tells identity changes from touches (both carry ``kind``).

A touch's ``kind`` (``email``) made it look like an identity change, so pruning a touches row
raised KeyError('merge_id') and the relay of the embedded default stopped publishing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

from services.bus import topics
from services.bus.outbox import prune_stored
from services.db.migrate import upgrade
from services.db.models import OutboxMessage
from services.db.session import make_engine, make_sessionmaker, transaction

TOUCH = {
    "touch_id": "t1", "person": "p" + "0" * 32, "campaign_id": "c1", "kind": "email",
    "occurred_at": "2017-08-14T10:00:00Z", "channel": "email",
}  # fmt: skip


def test_only_identity_kinds_are_identity_changes() -> None:
    assert not topics.is_identity(TOUCH)
    assert topics.is_identity(TOUCH | {"kind": "identity.merged"})
    assert topics.is_identity(TOUCH | {"kind": "identity.unmerged"})


def test_a_published_touch_row_is_kept_until_its_touch_is_stored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    row = {"topic": topics.TOUCHES, "records": [TOUCH], "published_at": datetime.now(UTC)}
    with transaction(sessions) as session:
        session.execute(insert(OutboxMessage), [row])
    with transaction(sessions) as session:
        assert prune_stored(session) == (0, 0)  # not stored yet: kept (was KeyError)
        assert session.scalars(select(OutboxMessage.id)).all()
