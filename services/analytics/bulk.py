"""Bulk ``INSERT ... ON CONFLICT DO NOTHING`` for the stream sink's big writes.

SQLAlchemy's executemany compiles the statement and walks every row's parameters in
Python, which cost the stream worker more than the database itself did (see the
performance section of the README). Here the SQL text is built once per dialect and
rows are tuples in column order:

* SQLite: the DBAPI's ``executemany`` (C), rows sorted by primary key (or a given
  index's columns); ``insert_new`` inserts them all and, only when some already existed,
  rolls back to a savepoint and looks the keys up;
* PostgreSQL: ``COPY`` into a staging table, then ``INSERT ... SELECT ... ON CONFLICT
  DO NOTHING`` (:mod:`services.db.copy`; 2.2-2.7x the records/s of `winwin bench
  pipeline` on PostgreSQL). Before, and with ``COPY = False``: one
  ``INSERT ... SELECT (e->>0)::type, ... FROM json_array_elements(%s)``
  whose one parameter is every row as JSON, encoded by orjson (C). The rows are neither
  rendered into a huge VALUES list nor sent one by one, and the server (in C, in its own
  process) takes them apart: the former one-array-per-column ``unnest`` spent ~28 % of
  the sink's insert time in psycopg's Python array dumper (`winwin bench pipeline`).

On SQLite each column's own bind processor still converts its values (e.g. DATETIME to
text), so what is stored is the same as with :mod:`services.db.upsert`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import JSON, DateTime, String, Table
from sqlalchemy.orm import Session

from services.db.copy import copy_insert
from services.db.upsert import insert_new
from services.db.values import chunks

#: PostgreSQL: COPY into a staging table, then INSERT ... SELECT (False: the one JSON
#: parameter below, kept to measure against; COPY was 2.2-2.7x faster end to end).
COPY = True


class BulkInsert:
    """Fast idempotent inserts into ``table`` of rows given as tuples of ``columns``."""

    def __init__(
        self,
        table: Table,
        columns: Sequence[str] | None = None,
        order: Sequence[str] | None = None,
    ):
        self.table = table
        self.columns = tuple(columns or (c.name for c in table.columns))
        self.key = itemgetter(*self.columns)  # dict row -> tuple row
        self._order = _sort_key(table, self.columns, order or [c.name for c in table.primary_key])
        self._compiled: dict[tuple[Any, ...], tuple[str, list[tuple[int, Any, bool]]]] = {}

    def insert_ignore(self, session: Session, rows: list[tuple[Any, ...]]) -> None:
        """Insert the rows whose primary key is new; ignore the others."""
        if rows:
            conn = session.connection()
            if conn.dialect.name == "postgresql" and COPY:
                copy_insert(conn, self.table, self.columns, self._copied(self.columns, rows))
                return
            sql, params = self._statement(conn.dialect, self.columns, rows, None)
            conn.exec_driver_sql(sql, params)

    def insert_new(self, session: Session, rows: list[dict[str, Any]], key: str) -> set[Any]:
        """Like :func:`services.db.upsert.insert_new` (the keys actually inserted)."""
        if not rows:
            return set()
        conn = session.connection()
        columns = tuple(rows[0])
        if conn.dialect.name == "sqlite":
            return self._insert_new_sqlite(conn, rows, columns, key)
        if conn.dialect.name != "postgresql":
            return insert_new(session, self.table, rows, key)
        tuples = [*map(itemgetter(*columns), rows)]
        if COPY:
            return set(copy_insert(conn, self.table, columns, self._copied(columns, tuples), key))
        sql, params = self._statement(conn.dialect, columns, tuples, key)
        return {row[0] for row in conn.exec_driver_sql(sql, params)}

    def _copied(
        self, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> list[tuple[Any, ...]]:
        """Rows for ``COPY``: JSON values encoded, in the order of the widest index."""
        encode = [
            (i, _json_text) for i, c in enumerate(columns) if isinstance(self.table.c[c].type, JSON)
        ]
        if encode:
            rows = [_processed(row, encode) for row in rows]
        if columns == self.columns:
            rows.sort(key=self._order)
        return rows

    def _insert_new_sqlite(
        self, conn: Any, rows: list[dict[str, Any]], columns: tuple[str, ...], key: str
    ) -> set[Any]:
        """SQLite's RETURNING goes row by row through SQLAlchemy. Instead insert them all
        with one ``executemany`` behind a savepoint: if every row went in (the count of
        changes says so; the usual case) they are all new. Otherwise roll back to the
        savepoint (the transaction keeps the write lock it took, so no other writer can
        commit meanwhile), look up which keys exist and insert the others. ``rows``
        must have distinct keys."""
        quote = conn.dialect.identifier_preparer.quote
        table, column = quote(self.table.name), quote(key)
        # A write that changes nothing, first: pysqlite opens the transaction only before
        # DML, and a SAVEPOINT outside one would be the transaction (RELEASE commits it).
        conn.exec_driver_sql(f"DELETE FROM {table} WHERE 0")  # noqa: S608 - our identifiers
        tuples = [*map(itemgetter(*columns), rows)]
        sql, params = self._statement(conn.dialect, columns, tuples, None)
        conn.exec_driver_sql("SAVEPOINT bulk_insert_new")
        inserted = conn.exec_driver_sql(sql, params).rowcount
        if inserted == len(rows):
            conn.exec_driver_sql("RELEASE bulk_insert_new")
            return {row[key] for row in rows}
        conn.exec_driver_sql("ROLLBACK TO bulk_insert_new")
        conn.exec_driver_sql("RELEASE bulk_insert_new")
        existing: set[Any] = set()
        for chunk in chunks(tuple(row[key] for row in rows)):
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT {column} FROM {table} WHERE {column} IN ({marks})"  # noqa: S608
            existing.update(r[0] for r in conn.exec_driver_sql(sql, chunk))
        fresh = [row for row in rows if row[key] not in existing]
        if fresh:
            tuples = [*map(itemgetter(*columns), fresh)]
            sql, params = self._statement(conn.dialect, columns, tuples, None)
            conn.exec_driver_sql(sql, params)
        return {row[key] for row in fresh}

    def _statement(
        self,
        dialect: Any,
        columns: tuple[str, ...],
        rows: list[tuple[Any, ...]],
        returning: str | None,
    ) -> tuple[str, Any]:
        sql, compiled = self._compile(dialect, columns, returning)
        if compiled:
            processors = [(i, _memoized(p) if memo else p) for i, p, memo in compiled]
            rows = [_processed(row, processors) for row in rows]
        if columns == self.columns:
            rows.sort(key=self._order)
        if dialect.name == "postgresql":
            return sql, (_json_rows(rows),)
        return sql, rows

    def _compile(
        self, dialect: Any, names_: tuple[str, ...], returning: str | None
    ) -> tuple[str, list[tuple[int, Any, bool]]]:
        cache_key = (dialect.name, names_, returning)
        if cache_key not in self._compiled:
            quote = dialect.identifier_preparer.quote
            names = ", ".join(quote(c) for c in names_)
            columns = [self.table.c[c] for c in names_]
            if dialect.name == "postgresql":
                fields = ", ".join(_pg_field(i, c, dialect) for i, c in enumerate(columns))
                values = f"SELECT {fields} FROM json_array_elements(%s::json) AS e"
                processors = []  # orjson encodes the values (times as RFC 3339)
            else:
                values = f"VALUES ({', '.join(['?'] * len(columns))})"
                procs = [(i, c.type._cached_bind_processor(dialect)) for i, c in enumerate(columns)]
                # Times repeat (an event's credits share its time): convert each once.
                processors = [
                    (i, p, isinstance(columns[i].type, DateTime)) for i, p in procs if p is not None
                ]
            sql = f"INSERT INTO {quote(self.table.name)} ({names}) {values} ON CONFLICT DO NOTHING"
            if returning:
                sql += f" RETURNING {quote(returning)}"
            self._compiled[cache_key] = (sql, processors)
        return self._compiled[cache_key]


def _pg_field(index: int, column: Any, dialect: Any) -> str:
    """Column ``index`` of a row ``e`` (a JSON array) as the column's type."""
    if isinstance(column.type, JSON):
        return f"e->{index}"
    return f"(e->>{index})::{column.type.compile(dialect=dialect)}"


def _json_rows(rows: list[tuple[Any, ...]]) -> str:
    """The rows as one JSON array of arrays (datetimes as RFC 3339 with their offset)."""
    try:
        return orjson.dumps(rows).decode()
    except TypeError:  # what orjson refuses (an integer beyond 64 bits): the stdlib
        return json.dumps(rows, separators=(",", ":"), default=_isoformat)


def _json_text(value: Any) -> str:
    """A JSON column's value as text (for ``COPY``), as :func:`_json_rows` encodes it."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits
        return json.dumps(value, separators=(",", ":"), default=_isoformat)


def _isoformat(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _processed(row: tuple[Any, ...], processors: list[tuple[int, Any]]) -> tuple[Any, ...]:
    values = list(row)
    for i, process in processors:
        values[i] = process(values[i])
    return tuple(values)


def _memoized(process: Any) -> Any:
    """``process`` for datetimes, each distinct one converted once. Keyed with the UTC
    offset too: equal instants in different offsets are equal datetimes but render
    differently."""
    seen: dict[Any, Any] = {}

    def memo(value: Any) -> Any:
        key = (value, value.utcoffset()) if value is not None else None
        try:
            return seen[key]
        except KeyError:
            result = seen[key] = process(value)
            return result

    return memo


def _sort_key(table: Table, columns: tuple[str, ...], order: Sequence[str]) -> Any:
    """The rows' sort key: one joined string when every key column is a NOT NULL
    string (compared in C, far cheaper than tuples with long equal prefixes)."""
    getter = itemgetter(*(columns.index(c) for c in order))
    cols = [table.c[c] for c in order]
    if len(cols) > 1 and all(isinstance(c.type, String) and not c.nullable for c in cols):
        return lambda row: "\x1f".join(getter(row))
    return getter
