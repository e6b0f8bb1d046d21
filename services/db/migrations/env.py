"""Alembic environment: the URL comes from the caller (``winwin db upgrade``)."""

from __future__ import annotations

from alembic import context

from services.db.models import Base
from services.db.session import make_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")


def run() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _migrate(connectable)
        return
    if url is None:
        raise RuntimeError("alembic: no sqlalchemy.url and no connection given")
    engine = make_engine(url)
    with engine.connect() as connection:
        _migrate(connection)
    engine.dispose()


def _migrate(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
