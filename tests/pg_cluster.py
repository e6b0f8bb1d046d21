"""Find a PostgreSQL server for tests and hand out fresh, empty databases on it.

* ``WINWIN_TEST_DATABASE_URL`` set (``.ci/run`` sets it): that server, with that role.
  The role must be allowed to CREATE DATABASE (the database in the URL is only used to
  connect for CREATE/DROP DATABASE).
* Otherwise a local server is tried: the Unix socket in /var/run/postgresql as the
  current OS user and as ``postgres``, then TCP 127.0.0.1:5432 as ``postgres``.

Every database it creates is called ``winwin_test_<random>`` and is dropped by
``PostgresServer.drop_created()`` (the conftest does that at the end of the session).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import secrets
import threading

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

ENV_URL = "WINWIN_TEST_DATABASE_URL"
DB_PREFIX = "winwin_test_"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be reached; the message says what was tried."""


def _candidate_urls() -> list[str]:
    user = getpass.getuser()
    socket_dir = "/var/run/postgresql"
    cands = []
    if os.path.isdir(socket_dir):
        cands.append(f"postgresql+psycopg://{user}@/postgres?host={socket_dir}")
        if user != "postgres":
            cands.append(f"postgresql+psycopg://postgres@/postgres?host={socket_dir}")
    cands += [
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres",
    ]
    return cands


def _try_connect(url: str) -> str | None:
    """Return None if ``url`` connects and may create databases, else the reason."""
    engine = create_engine(url, connect_args={"connect_timeout": 3}, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            ok = conn.execute(
                text("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user")
            ).scalar()
            if not ok:
                return "role may not CREATE DATABASE"
        return None
    except Exception as e:  # noqa: BLE001 - any failure: try the next candidate
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}"
    finally:
        engine.dispose()


class PostgresServer:
    """A reachable server plus an admin URL; creates and drops test databases."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url: URL = make_url(admin_url)
        self._engine = create_engine(
            self.admin_url,
            isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": 5},
        )
        self._created: list[str] = []
        self._lock = threading.Lock()

    def url_for(self, dbname: str) -> str:
        """SQLAlchemy URL (as a string, password included) for ``dbname`` on this server."""
        return self.admin_url.set(database=dbname).render_as_string(hide_password=False)

    def create_database(self, prefix: str = DB_PREFIX) -> str:
        """Create a fresh empty database and return its SQLAlchemy URL."""
        name = f"{prefix}{secrets.token_hex(6)}"
        with self._engine.connect() as conn:
            conn.execute(text(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"))
        with self._lock:
            self._created.append(name)
        return self.url_for(name)

    def drop_database(self, url_or_name: str) -> None:
        name = make_url(url_or_name).database if "://" in url_or_name else url_or_name
        with self._engine.connect() as conn:
            # WITH (FORCE) (PostgreSQL 13+) ends sessions a test forgot to close.
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        with self._lock, contextlib.suppress(ValueError):
            self._created.remove(name or "")

    def drop_created(self) -> None:
        """Drop every database this object created (best effort), then dispose."""
        for name in list(self._created):
            with contextlib.suppress(Exception):
                self.drop_database(name)
        self._engine.dispose()

    def describe(self) -> str:
        return self.admin_url.render_as_string(hide_password=True)


def find_server() -> PostgresServer:
    """The server to test against, or PostgresUnavailable saying what was tried."""
    env = os.environ.get(ENV_URL, "").strip()
    candidates = [env] if env else _candidate_urls()
    tried = []
    for url in candidates:
        reason = _try_connect(url)
        if reason is None:
            return PostgresServer(url)
        tried.append(f"  {make_url(url).render_as_string(hide_password=True)}: {reason}")
    hint = (
        f"{ENV_URL} is set but unusable"
        if env
        else f"set {ENV_URL}=postgresql+psycopg://USER:PASS@HOST:PORT/postgres "
        "or start a local server (see .ci/run)"
    )
    raise PostgresUnavailable("no usable PostgreSQL; " + hint + "\n" + "\n".join(tried))
