"""Logging for every role: readable lines by default, JSON lines with
``WINWIN_LOG_FORMAT=json`` (one object per line, for Loki, CloudWatch, ELK...).

``WINWIN_LOG_LEVEL`` (default WARNING) sets the root level. Messages never carry PII by
construction (pseudonyms only); this module only shapes them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from services.private_files import private_file

__all__ = ["JsonFormatter", "configure", "open_private_log", "private_log_folder"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: LogRecord attributes that are not "extra" fields given by the caller.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, role, extras, exception."""

    def __init__(self, role: str | None = None):
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        if self.role:
            entry["role"] = self.role
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure(role: str | None = None, stream: Any = None) -> None:
    """Install one stderr handler on the root logger, text or JSON per the environment."""
    fmt = os.environ.get("WINWIN_LOG_FORMAT", "text").strip().lower()
    level = os.environ.get("WINWIN_LOG_LEVEL", "WARNING").strip().upper() or "WARNING"
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(role) if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if level in logging.getLevelNamesMapping() else "WARNING")


def private_log_folder(folder: Path) -> Path:
    """The logs folder, readable by its owner alone (0700, tightened if older): tracebacks
    and library messages may quote what a request carried."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)
    return folder


def open_private_log(path: Path) -> BinaryIO:
    """Append to a child's log file, 0600 like the database (an older 0644 one tightened)."""
    private_file(str(path))
    return open(path, "ab")  # noqa: SIM115 - the caller hands it to a child and closes it
