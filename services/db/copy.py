"""PostgreSQL's ``COPY`` for idempotent bulk inserts (psycopg 3's ``Cursor.copy``).

``COPY`` cannot skip rows whose key exists, so the rows are copied into a temporary
table shaped like the target (one per target and session, emptied at each commit) and
moved with ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``: the keys decide, as with
every other write of the sink, and a batch delivered twice inserts nothing the second
time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table

__all__ = ["copy_in", "copy_insert", "copy_out"]


def copy_insert(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    returning: str | None = None,
) -> list[Any]:
    """Insert ``rows`` (tuples of ``columns``, JSON values already encoded as text) whose
    key is new; the ``returning`` column of those inserted, if asked."""
    quote = conn.dialect.identifier_preparer.quote
    target = quote(table.name)
    staging = quote(f"copy_{table.name}")
    names = ", ".join(quote(c) for c in columns)
    raw = conn.connection.driver_connection
    assert raw is not None  # noqa: S101 - an open connection has one
    with raw.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;"
            f" TRUNCATE {staging}"
        )
        with cursor.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        sql = f"INSERT INTO {target} ({names}) SELECT {names} FROM {staging} ON CONFLICT DO NOTHING"  # noqa: S608 - our identifiers
        if returning:
            sql += f" RETURNING {quote(returning)}"
        cursor.execute(sql)
        return [r[0] for r in cursor.fetchall()] if returning else []


def copy_out(conn: Connection, table: Table) -> bytes:
    """Every row of ``table`` in ``COPY``'s binary format."""
    raw = conn.connection.driver_connection
    assert raw is not None  # noqa: S101 - an open connection has one
    name = conn.dialect.identifier_preparer.quote(table.name)
    with raw.cursor() as cursor, cursor.copy(f"COPY {name} TO STDOUT (FORMAT BINARY)") as copy:
        return b"".join(bytes(block) for block in copy)


def copy_in(conn: Connection, table: Table, data: bytes) -> None:
    """Load :func:`copy_out`'s ``data`` into ``table`` as it is: no key is checked."""
    raw = conn.connection.driver_connection
    assert raw is not None  # noqa: S101 - an open connection has one
    name = conn.dialect.identifier_preparer.quote(table.name)
    with raw.cursor() as cursor, cursor.copy(f"COPY {name} FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(data)
