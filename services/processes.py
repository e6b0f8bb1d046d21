"""Process plumbing shared by the supervisor (``winwin up``), its children and the
embedded broker: children that die with their parent, process groups, a hard
deadline after a stop signal, and heartbeat files."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)
#: Seconds the relay and the worker have, after SIGTERM or SIGINT, before they end
#: themselves whatever Kafka does (the API: uvicorn's graceful shutdown, 10 s).
GRACE = 15.0


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that sends ``sig`` to the child when the process that started it
    ends, even by SIGKILL (Linux ``PR_SET_PDEATHSIG``; ``None`` elsewhere).

    It fires when the starting *thread* ends: start children from the main thread."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def set_pdeathsig() -> None:
        prctl(1, sig, 0, 0, 0)  # 1 == PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return set_pdeathsig


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by ``pid`` (a child started in a new session), so
    that nothing it started (the worker's sink process) outlives it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def exit_within(seconds: float, role: str) -> None:
    """Arm a deadline after a stop signal: unless the process has ended ``seconds``
    from now, it ends itself, whatever state Kafka is in. Work not committed is redone
    (offsets not committed: re-delivery; outbox rows not marked: sent again), and the
    sinks are idempotent."""

    def expire() -> None:
        log.error(
            "the %s role did not stop within %.0f s of the signal; exiting now", role, seconds
        )
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


class Heartbeat:
    """A role's heartbeat: a file ``<state dir>/heartbeats/<role>-<pid>`` whose time of
    change says when the role last went round its loop (the relay's; the worker's is
    in SQL). The supervisor reads its age (:func:`heartbeat_age`) and kills a role
    whose heartbeat is too old, as a frozen process never comes round again."""

    def __init__(self, state_dir: Path, role: str, every: float = 1.0):
        self.path = heartbeat_path(state_dir, role, os.getpid())
        self.every = every
        self._beaten = -every

    def beat(self) -> None:
        """Touch the file, at most once per ``every`` seconds (call it on each round)."""
        now = time.monotonic()
        if now - self._beaten < self.every:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
        except OSError as exc:  # a full or read-only disk: the role itself still works
            log.warning("could not beat %s: %s", self.path, exc)
        self._beaten = now

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def drop_heartbeat(state_dir: Path, role: str, pid: int) -> None:
    """Remove the heartbeat file of a role's process that ended (if it had one)."""
    with contextlib.suppress(OSError):
        heartbeat_path(state_dir, role, pid).unlink()


def heartbeat_path(state_dir: Path, role: str, pid: int) -> Path:
    return state_dir / "heartbeats" / f"{role}-{pid}"


def heartbeat_age(path: Path) -> float | None:
    """Seconds since the heartbeat file at ``path`` was touched; None if there is none."""
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except OSError:
        return None
