"""The SQLite database holds addresses and replies: its file, -wal and -shm are created
0600 (owner only) whatever the umask, in a 0700 folder, and an older 0644 file is
tightened. The dev state folder, which holds the generated secrets, is 0700."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from services.config import Settings
from services.db.migrate import upgrade
from services.db.session import make_engine


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the common default: files 0644, folders 0755
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    db = tmp_path / "state" / "winwin.db"
    upgrade(f"sqlite:///{db}")
    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as conn:  # hold a connection: -wal and -shm exist meanwhile
            conn.execute(text("CREATE TABLE t (x)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
            files = [db, db.with_name("winwin.db-wal"), db.with_name("winwin.db-shm")]
            assert {f.name: oct(_mode(f)) for f in files} == {f.name: "0o600" for f in files}
    finally:
        engine.dispose()
    assert _mode(db.parent) == 0o700


def test_an_older_world_readable_database_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "winwin.db"
    db.touch(mode=0o644)
    assert _mode(db) == 0o644
    make_engine(f"sqlite:///{db}").dispose()
    assert _mode(db) == 0o600


def test_the_dev_state_folder_with_the_secrets_is_owner_only(tmp_path: Path) -> None:
    settings = Settings(env="dev", state_dir=tmp_path / "state")
    assert _mode(tmp_path / "state") == 0o700
    assert _mode(tmp_path / "state" / "secret_key") == 0o600
    assert settings.secret_key.get_secret_value()
