"""Bulk idempotent writes that work on SQLite and PostgreSQL alike.

``table`` is a Core table or a mapped class's ``__table__``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import FromClause, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def _insert(session: Session, table: FromClause):  # type: ignore[no-untyped-def]
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def insert_ignore(session: Session, table: FromClause, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING, in one executemany."""
    if rows:
        session.execute(_insert(session, table).on_conflict_do_nothing(), list(rows))


def insert_new(
    session: Session, table: FromClause, rows: Sequence[dict[str, Any]], key: str
) -> set[Any]:
    """Insert rows whose ``key`` is new; return the keys that were actually inserted.

    This is how the ingest ledger and the stream sink tell a first delivery from a
    duplicate or a re-delivery, in one round trip per batch.
    """
    if not rows:
        return set()
    stmt = _insert(session, table).on_conflict_do_nothing().returning(table.c[key])
    result = session.execute(stmt, list(rows))
    return {row[0] for row in result}


def upsert(
    session: Session,
    table: FromClause,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    *,
    newer_than: str | None = None,
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET every other column; with
    ``newer_than`` (a column), only where the new value of that column is ≥ the stored."""
    if not rows:
        return
    stmt = _insert(session, table)
    cols = [c for c in rows[0] if c not in keys]
    where = None if newer_than is None else stmt.excluded[newer_than] >= table.c[newer_than]
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_={c: stmt.excluded[c] for c in cols}, where=where
    )
    session.execute(stmt, list(rows))


def increment(session: Session, table: FromClause, keys: dict[str, Any], column: str) -> None:
    """Add 1 to ``column`` of the row with ``keys``, or insert that row with 1."""
    stmt = _insert(session, table).values({**keys, column: 1})
    stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_={column: table.c[column] + 1})
    session.execute(stmt)


def upsert_first(
    session: Session,
    table: FromClause,
    row: dict[str, Any],
    keys: Sequence[str],
    first: Sequence[str],
) -> Any:
    """Insert ``row``, or keep the stored row, setting each column of ``first`` only where
    it is NULL (the first value stays); returns the stored values of ``first``."""
    stmt = _insert(session, table).values(row)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={c: func.coalesce(table.c[c], stmt.excluded[c]) for c in first},
    ).returning(*(table.c[c] for c in first))
    return session.execute(stmt).one()
