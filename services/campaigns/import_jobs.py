"""Contacts CSV imports started from the console (issue 16): upload → a job → its progress
→ the counts and a report of the rejected rows.

The upload is kept in a private temporary folder (its size is bounded by
``services.guards.LIMITS``), checked for a readable header at once (so a file that is not
a contacts CSV is refused with 422 before any job starts), then read by the streaming
importer of ``winwin contacts import`` (:mod:`services.campaigns.import_file`,
:mod:`services.campaigns.importer`) in a background thread of the API process. At most
``running`` imports run at once (the next one is refused); the last ``keep`` jobs are
remembered, in this process's memory only, with their rejected-rows CSV (line and reason,
formula-neutralised by ``services.spreadsheet``).
"""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.campaigns.confirmations import send_confirmations
from services.campaigns.contacts import Saved, save_contacts
from services.campaigns.dispatch import make_sender
from services.campaigns.import_file import ContactsFile, count_lines, open_text
from services.campaigns.importer import Rejections, import_rows, opened
from services.errors import UsageError

if TYPE_CHECKING:
    from services.application import Container

__all__ = ["UPLOAD", "Busy", "ImportJob", "ImportJobs"]
UPLOAD = "upload.csv"  # the uploaded file's name in its job's folder
log = logging.getLogger(__name__)


class Busy(Exception):
    """As many imports as allowed are running: try again when one has finished."""


@dataclass
class ImportJob:
    """One import: how far it is (rows read of ``total``) and, once done, its counts."""

    id: str
    by: str
    total: int
    folder: Path
    n: int = 0  # rows read so far
    state: str = "running"  # running | done | failed
    saved: Saved = field(default_factory=lambda: Saved(0, 0, 0))
    rejections: Rejections | None = None
    problem: str = ""

    def update(self, rows: int) -> None:
        """Rows read since the last call (the importer's progress bar protocol)."""
        self.n += rows

    @property
    def report(self) -> Path:
        return self.folder / "rejected.csv"

    def as_json(self) -> dict[str, Any]:
        rejected = self.rejections.count if self.rejections else 0
        return {
            "id": self.id,
            "state": self.state,
            "rows_total": self.total,
            "rows_read": min(self.n, self.total),
            "created": self.saved.created,
            "updated": self.saved.updated,
            "kept_unsubscribed": self.saved.kept_unsubscribed,
            "rejected": rejected,
            "rejected_report": bool(self.rejections and self.rejections.written),
            "problem": self.problem,
        }


class ImportJobs:
    """The API process's imports: at most ``running`` at once, the last ``keep`` kept."""

    def __init__(self, running: int = 2, keep: int = 20):
        self.running, self.keep = running, keep
        self._jobs: OrderedDict[str, ImportJob] = OrderedDict()
        self._lock = threading.Lock()

    def folder(self) -> Path:
        """A new private folder (0700) for one upload and its report."""
        return Path(tempfile.mkdtemp(prefix="winwin-import-"))

    def get(self, job_id: str) -> ImportJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def start(self, c: Container, upload: Path, by: str) -> ImportJob:
        """Checks the file's header (UsageError) and imports it in the background
        (Busy when ``running`` imports are running already)."""
        text, encoding = open_text(upload)
        try:
            contacts = opened(ContactsFile(text, encoding), "the file")
        except UsageError:
            text.close()
            raise
        with self._lock:
            if sum(j.state == "running" for j in self._jobs.values()) >= self.running:
                text.close()
                raise Busy(f"{self.running} imports are running: try again when one is done")
            rows = max(0, count_lines(upload) - 1)
            job = ImportJob(secrets.token_urlsafe(12), by, rows, upload.parent)
            self._jobs[job.id] = job
            self._forget_old()
        job.rejections = Rejections(job.report, echo=False)
        worker = threading.Thread(
            target=self._run, args=(c, job, contacts, text), name="contacts-import", daemon=True
        )
        worker.start()
        return job

    def _run(self, c: Container, job: ImportJob, contacts: ContactsFile, text: Any) -> None:
        secret = c.settings.secret_key.get_secret_value().encode()

        def save(batch: list[dict[str, Any]]) -> Saved:
            with c.sessions() as session, session.begin():
                return save_contacts(session, secret, batch, source="csv-import", now=c.now())

        assert job.rejections is not None
        try:
            with text:
                job.saved = import_rows(contacts, job.rejections, job, save)
        except Exception as exc:  # the job says it failed; the API process goes on
            log.exception("contacts import %s failed", job.id)
            job.problem = f"the import stopped: {type(exc).__name__}"
        finally:
            job.rejections.close()
            (job.folder / UPLOAD).unlink(missing_ok=True)
        try:
            send_confirmations(c, make_sender(c))  # double opt-in, as POST /contacts does
        except Exception:  # the dispatcher's next round sends them
            log.exception("confirmations after contacts import %s", job.id)
        job.state = "failed" if job.problem else "done"

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.state != "running"]
        while len(self._jobs) > self.keep and finished:
            old = finished.pop(0)
            del self._jobs[old.id]
            shutil.rmtree(old.folder, ignore_errors=True)
