"""Engines and sessions. Nothing connects at import time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, **kwargs: object) -> Engine:
    """An engine for SQLite (WAL, busy timeout: several processes share the file) or
    PostgreSQL (psycopg 3). Errors never quote the statement's parameters: they are
    addresses, names and replies, and errors reach the logs."""
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        private_file(make_url(url).database)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)  # type: ignore[arg-type]
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, **kwargs)  # type: ignore[arg-type]


def private_file(database: str | None) -> None:
    """Create the SQLite file (it holds addresses and replies) readable by its owner
    alone, 0600, in a 0700 folder when the folder is new; tighten an older 0644 file.
    SQLite gives the -wal and -shm files the database file's mode."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        for file in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
            if file.exists() and file.stat().st_mode & 0o077:
                file.chmod(0o600)
    except PermissionError:  # not ours to change (a read-only copy, another owner)
        pass


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    # Page cache per connection (negative: KiB) so big stream batches do not spill
    # dirty pages mid-transaction; temp b-trees (sorts, IN lists) in memory.
    cur.execute("PRAGMA cache_size=-65536")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session
