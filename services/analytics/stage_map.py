"""The stage map as stored configuration (``settings`` row ``stage_map``) and its version.

Every change of the map bumps its version first (``stage_map_version``, one row), and
the stream's sink reads the version at the start of each batch with
:func:`version_in_force`, reloading the map when it changed. The two are serialised: on
PostgreSQL the sink reads the row ``FOR SHARE``, so a change waits for the batches in
flight to commit (its re-staging then sees their events) and a batch begun during a
change waits for it to commit (and then reads the new version); on SQLite the read is
the batch's first write, and SQLite has one writer at a time. So an event is always
staged with the map in force when its batch commits.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from services.db.models import Setting
from services.db.models_reads import StageMapVersion
from services.db.upsert import increment, upsert
from services.domain.stages import DEFAULT_STAGE_MAP, StageMap

KEY = "stage_map"
ROW = {"id": 1}  # the one row of stage_map_version


def load_stage_map(session: Session) -> StageMap:
    row = session.get(Setting, KEY)
    return StageMap.from_dict(row.value) if row else DEFAULT_STAGE_MAP


def save_stage_map(session: Session, stage_map: StageMap) -> None:
    """Store ``stage_map``; the version is bumped first, and its row lock is held to the
    commit (the sink's batches wait for it)."""
    increment(session, StageMapVersion.__table__, ROW, "version")
    upsert(session, Setting.__table__, [{"key": KEY, "value": stage_map.to_dict()}], ["key"])


def stage_map_version(session: Session) -> int:
    """The stage map's version, unlocked (compared later with :func:`version_in_force`)."""
    return session.scalar(select(StageMapVersion.version).filter_by(**ROW)) or 0


def version_in_force(session: Session, alone: bool = False) -> int:
    """The stage map's version, locked against a change until this transaction ends
    (one statement by primary key; run it first in the transaction). The stream's
    batches hold it shared; ``alone=True`` holds it exclusively, so that no batch commits
    until this transaction ends (a window computation's last step)."""
    table = cast(Table, StageMapVersion.__table__)
    one = table.c.id == ROW["id"]
    if session.get_bind().dialect.name == "postgresql":
        locked = select(table.c.version).where(one).with_for_update(read=not alone)
        found = session.execute(locked)
    else:  # a write (of the same value) begins SQLite's write transaction: one at a time
        same = update(table).where(one).values(version=table.c.version)
        found = session.execute(same.returning(table.c.version))
    return found.scalar() or 0
