"""Files that hold personal data (the SQLite database, role logs): readable by their owner
alone. A shared-kernel module, so the database adapter and the logs both use it."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["private_file"]


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
