"""The click spool: clicks answered before SQL stored them, kept on local disk.

A redirect or open pixel answers once its click is committed; when SQL fails or is slower
than ``WINWIN_CLICK_COMMIT_WAIT_SECONDS``, it answers once the click is *durably queued*
instead: appended here (one JSON line per click, written, flushed and fsync'd once per
batch of waiting clicks). The records are already pseudonymous (no email, no name).

The Gatherer stores spooled clicks when SQL answers again, and at the API's next start
(a SIGKILL loses nothing answered), then deletes the files. Storing is idempotent by the
click's event id (the ingest ledger), so a click both spooled and stored by the Gatherer
is stored once.

Files live in ``<state dir>/click-spool/<hash of the database URL>/`` so a spool is only
ever stored into its own database. Each process appends to a file of its own, holding an
exclusive ``flock`` on it while open: the kernel releases it when the process dies (even
by SIGKILL), so a file whose lock can be taken belongs to nobody alive and may be stored.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)
FOLDER = "click-spool"
CHUNK = 500  # records per transaction when storing a spool file

Store = Callable[[list[dict[str, Any]]], object]


class ClickSpool:
    """The append-only spool files of one database, shared by the Gatherer's thread and
    the event loop's executor (a lock guards this process's own file)."""

    def __init__(self, state_dir: Path, database_url: str) -> None:
        digest = hashlib.sha256(database_url.encode()).hexdigest()[:16]
        self.folder = state_dir / FOLDER / digest
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None  # this process's own file, flock'd while open
        self.pending = True  # files of an earlier run may be waiting

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        """Append ``records`` durably: one write, one flush, one fsync for all of them."""
        if not records:
            return
        data = b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records)
        with self._lock:
            file = self._file or self._open()
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
            self.pending = True

    def store(self, store: Store) -> bool:
        """Store every spooled click of a process no longer appending (this one's own file
        included) with ``store``, then delete the files. False if storing failed: what is
        left stays for the next try."""
        with self._lock:
            self._close()  # new clicks go to a new file; this one is stored like the others
            self.pending = False
        try:
            for path in sorted(self.folder.glob("*.jsonl")):
                _store_file(path, store)
        except Exception:  # noqa: BLE001 - SQL down again: kept, tried later
            log.exception("could not store the spooled clicks; kept for the next try")
            self.pending = True
            return False
        return True

    def close(self) -> None:
        """Release this process's file (what a dying process's kernel does)."""
        with self._lock:
            self._close()

    def _open(self) -> IO[bytes]:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.folder / f"{os.getpid()}-{uuid.uuid4().hex}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        _fsync_folder(self.folder)  # the new file's name survives a crash too
        self._file = os.fdopen(fd, "ab")
        return self._file

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _store_file(path: Path, store: Store) -> None:
    """Store the records of ``path`` unless a live process holds it, then delete it."""
    try:
        file = path.open("rb")
    except FileNotFoundError:  # stored meanwhile by another process
        return
    with file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # its process is alive and appending
            return
        records = _records(path, file.read())
        for start in range(0, len(records), CHUNK):
            store(records[start : start + CHUNK])
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    if records:
        log.warning("stored %d spooled clicks from %s", len(records), path.name)


def _records(path: Path, data: bytes) -> list[dict[str, Any]]:
    records = []
    for line in data.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:  # torn by a crash mid-write: never answered, so never promised
            log.warning("skipped an unreadable line of %s", path.name)
    return records


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
