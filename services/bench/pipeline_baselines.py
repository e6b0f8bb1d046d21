"""The pipeline bench's two other baselines, measured after the worker's run on the
same rows (issue 19):

* the limit: the rows the worker wrote (events, touches, credits, stage facts), read
  back and loaded again into the same tables and indexes by a bare bulk load (``COPY``
  on PostgreSQL, one ``executemany`` per table on SQLite), one transaction, no stream;
* the peer: a hand-written Faust agent writing each record in its own transaction, one
  INSERT per row (:mod:`streams.peer`), run on the same topics into emptied tables.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, delete, func, select

from services.bench.env import BenchEnv, progress, wait_for
from services.db import models
from services.db.copy import copy_in, copy_out
from services.db.models_reads import CreditWindow

TABLES: tuple[Any, ...] = (
    models.EngagementEvent,
    models.Touch,
    models.Credit,
    models.StageFact,
)
PEER_RECORDS = 2000  # the peer is slow: timed over a tenth of the records, at most this


def bulk_load(env: BenchEnv) -> float:
    """Seconds a bare bulk load takes to write the rows now in the sink's tables."""
    with env.engine.connect() as conn:
        dumps = [(t.__table__, _dump(conn, t.__table__)) for t in TABLES]
    with env.engine.begin() as conn:
        for table, _ in dumps:
            conn.execute(delete(table))
    start = time.monotonic()
    with env.engine.begin() as conn:
        for table, rows in dumps:
            _load(conn, table, rows)
    return time.monotonic() - start


def _dump(conn: Connection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        return copy_out(conn, table)
    return [tuple(row) for row in conn.exec_driver_sql(f"SELECT * FROM {table.name}")]  # noqa: S608


def _load(conn: Connection, table: Table, rows: Any) -> None:
    if conn.dialect.name == "postgresql":
        copy_in(conn, table, rows)
    elif rows:
        marks = ", ".join("?" * len(rows[0]))
        conn.exec_driver_sql(f"INSERT INTO {table.name} VALUES ({marks})", rows)  # noqa: S608


def start_peer(env: BenchEnv) -> tuple[Any, Path]:
    """Start :mod:`streams.peer` held at its gate (it writes nothing until
    :func:`peer_rate` opens it) and wait until it is there: Faust takes tens of seconds
    to start and join its group here, and that work must not share the machine with the
    worker being timed (it took up to half of this machine's two cores)."""
    gate = env.dir / "peer.go"
    proc = env.spawn("peer", ["-m", "streams.peer"], WINWIN_PEER_GATE=str(gate))
    waiting = Path(f"{gate}.waiting")

    def at_gate() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"peer exited; log:\n{env.log_tail('peer')}")
        return waiting.exists()

    wait_for(at_gate, 180, 0.1, "the per-event agent at its gate")
    time.sleep(2)  # its consumer fills its buffers, then idles
    return proc, gate


def peer_rate(env: BenchEnv, peer: tuple[Any, Path], records: int) -> float:
    """Records/s of :mod:`streams.peer` into emptied tables, from its first row in SQL
    to a tenth of ``records`` rows (at most :data:`PEER_RECORDS`)."""
    proc, gate = peer
    with env.engine.begin() as conn:
        for t in (*TABLES, CreditWindow):
            conn.execute(delete(t.__table__))
    target = max(1, min(records // 10, PEER_RECORDS))
    gate.touch()

    def stored() -> int:
        if proc.poll() is not None:
            raise RuntimeError(f"peer exited; log:\n{env.log_tail('peer')}")
        T = models.Touch
        counts = [  # records: the touches it derives from events (e:...) are not
            select(func.count()).select_from(models.EngagementEvent),
            select(func.count()).select_from(T).where(~T.touch_id.startswith("e:")),
        ]
        with env.engine.connect() as conn:
            return sum(int(conn.execute(c).scalar_one()) for c in counts)

    first = wait_for(stored, 120, 0.05, "the peer's first row")
    start = time.monotonic()
    last = wait_for(lambda: (n := stored()) >= target and n, max(300, target / 5), 0.1, "peer")
    span = time.monotonic() - start
    env.stop(proc)
    progress(f"pipeline: the per-event agent wrote {last - first} records in {span:.2f}s")
    return float(last - first) / max(span, 1e-6)
