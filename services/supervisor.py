"""The supervisor of ``winwin up`` and ``winwin demo``: the embedded broker (when no Kafka
is configured) and the four roles, each a child process, kept running.

* **Restarts.** A role that dies is started again after a backoff (0.5 s, doubling up
  to 30 s; back to 0.5 s once it has lived a minute), and the log says so.
* **Stalls.** A worker whose heartbeat (``worker_heartbeats``, every 2 s) is older than
  ``WINWIN_WORKER_STALL_SECONDS`` (60 s), once it has been seen, is frozen or wedged: its
  process group is killed and it is restarted like a role that died, the log says
  "stalled". The relay likewise, by its heartbeat file (``<state dir>/heartbeats``,
  every second) and ``WINWIN_RELAY_STALL_SECONDS`` (60 s).
* **The embedded broker** keeps nothing once it ends (memory storage). When it dies it
  is started again on the same port, and the relay and the worker, which hold its
  connections and its consumer group, are restarted with it. The relay then sends again
  every outbox record the sinks have not stored yet (services/bus/outbox.py). A broker
  alive but frozen (SIGSTOP, hung) is probed every second with a Kafka request; one that
  has missed 3 probes in a row and not answered for ``WINWIN_RELAY_STALL_SECONDS`` is
  SIGKILLed, and restarted as one that died (the log says "stalled").
* **Stopping.** SIGTERM and SIGINT alike stop everything: SIGTERM to each role (each
  ends within services.processes.GRACE), SIGKILL to the process group of any still alive
  after :data:`STOP_WAIT`, the broker last. ``stop()`` returns only when no child lives.
  Children run in sessions of their own (Ctrl-C reaches the supervisor only) and get
  SIGTERM when the supervisor dies, even by SIGKILL (``PR_SET_PDEATHSIG``).

Call :meth:`Supervisor.watch` from the thread that started it (a child's death signal
is tied to the thread that started it), every half second or so.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from services.accounts_cli import dev_admin_sign_in
from services.bus.embedded import EmbeddedBroker
from services.config import Settings, get_settings
from services.db.migrate import upgrade
from services.db.models import WorkerHeartbeat
from services.db.session import make_engine, make_sessionmaker
from services.logs import open_private_log, private_log_folder
from services.processes import (
    die_with_parent,
    drop_heartbeat,
    heartbeat_age,
    heartbeat_path,
    kill_group,
)
from services.roles import ROLES

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from services.accounts_cli import dev_admin_sign_in

log = logging.getLogger("winwin.supervisor")
FIRST_DELAY, MAX_DELAY = 0.5, 30.0
#: A child that lived this long before dying is restarted after FIRST_DELAY again.
STABLE_AFTER = 60.0
#: Seconds a role gets after SIGTERM before its process group is killed.
STOP_WAIT = 20.0
#: Faust settings for the embedded broker's single worker (when not set already).
EMBEDDED_FAUST = {
    "BROKER_SESSION_TIMEOUT": "10",
    "BROKER_REBALANCE_TIMEOUT": "10",
    "BROKER_HEARTBEAT_INTERVAL": "1",
}
#: Roles restarted with the broker, and how long they get to stop before SIGKILL.
NEEDS_BROKER, BROKER_ROLES_WAIT = ("relay", "worker"), 5.0
#: Seconds between two looks at the heartbeats of the worker and the relay.
STALL_CHECK_EVERY = 5.0
#: Seconds between two probes of the embedded broker, and how long one waits for its answer.
BROKER_PROBE_EVERY, BROKER_PROBE_WAIT = 1.0, 1.0
#: Probes in a row a frozen broker has missed, at least, when it is killed.
BROKER_MISSES = 3


def backoff(failures: int) -> float:
    """Seconds to wait before the next start after ``failures`` quick deaths."""
    return float(min(FIRST_DELAY * 2**failures, MAX_DELAY))


@dataclass
class Child:
    """One supervised process: its command, the current process, its restart state."""

    name: str
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0
    restarts: int = 0
    due: float | None = None  # when to start it again; None: not now


class Supervisor:
    """Starts the embedded broker when no Kafka is configured, migrates the database,
    then runs every role as a child process, restarting what dies (see the module)."""

    def __init__(
        self, settings: Settings | None = None, port: int = 8000, log_dir: Path | None = None
    ):
        self.settings = settings or get_settings()
        self.port = port
        if "public_base_url" not in self.settings.model_fields_set:  # links follow --port
            base = f"http://127.0.0.1:{port}"
            self.settings = self.settings.model_copy(update={"public_base_url": base})
        self.log_dir = log_dir or self.settings.state_dir / "logs"
        self.children: dict[str, Child] = {}
        self.env: dict[str, str] = dict(os.environ)
        self.broker: EmbeddedBroker | None = None  # when no Kafka is configured
        self.broker_started, self.broker_failures = 0.0, 0
        self.broker_due: float | None = None  # when to start it again; None: not now
        self.broker_answered, self.broker_probed, self.broker_misses = 0.0, 0.0, 0
        self.stopping = threading.Event()
        self.stall_checked = 0.0
        self._sessions: sessionmaker[Session] | None = None

    def stop_on_signals(self) -> None:
        """SIGTERM and SIGINT set :attr:`stopping` (the caller's loop then stops)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())

    def start(self) -> Supervisor:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Supervisor:
        private_log_folder(self.log_dir)
        if self.settings.embedded_kafka:
            self.broker = EmbeddedBroker(log_path=self.log_dir / "broker.log").start()
            self.broker_started = self.broker_answered = time.monotonic()
            self.env |= {
                "WINWIN_KAFKA_BOOTSTRAP": self.broker.bootstrap,
                "WINWIN_KAFKA_PARTITIONS": str(self.settings.partitions),
                "WINWIN_KAFKA_EPHEMERAL": "1",
            }
            # One worker, on this machine: a short session lets a restarted worker take
            # its partitions after ~5 s instead of ~30-60 s (Faust reads these names).
            for name, seconds in EMBEDDED_FAUST.items():
                self.env.setdefault(name, seconds)
        self.env |= {
            "WINWIN_PUBLIC_BASE_URL": self.settings.public_base_url,
            "WINWIN_STATE_DIR": str(self.settings.state_dir),
        }
        upgrade(self.settings.database_url)
        for role in ROLES:
            args = [sys.executable, "-m", "services.cli", role]
            if role == "api":
                args += ["--port", str(self.port)]
            self.children[role] = Child(role, args)
            if not self.stopping.is_set():
                self._spawn(self.children[role])
        return self

    def _spawn(self, child: Child) -> None:
        out = open_private_log(self.log_dir / f"{child.name}.log")
        try:
            child.proc = subprocess.Popen(
                child.args,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        finally:
            out.close()
        child.started, child.due = time.monotonic(), None

    def watch(self) -> None:
        """Restart what died: the broker (with the roles that need it), then the roles."""
        if self.stopping.is_set():
            return
        now = time.monotonic()
        self._watch_broker(now)
        self._watch_stall(now)
        for child in self.children.values():
            if child.proc is not None and child.proc.poll() is not None:
                self._died(child, now)
            waits_for_broker = self.broker_due is not None and child.name in NEEDS_BROKER
            if child.due is not None and child.due <= now and not waits_for_broker:
                self._spawn(child)
                child.restarts += 1
                log.warning(
                    "restarted the %s role (pid %d, restart %d)",
                    child.name,
                    child.proc.pid,  # type: ignore[union-attr]
                    child.restarts,
                )

    def _watch_stall(self, now: float) -> None:
        """Kill a worker or a relay whose heartbeat is too old (it then restarts like one
        that died)."""
        if now < self.stall_checked + STALL_CHECK_EVERY:
            return
        self.stall_checked = now
        limits = {
            "worker": self.settings.worker_stall_seconds,
            "relay": self.settings.relay_stall_seconds,
        }
        for name, limit in limits.items():
            child = self.children.get(name)
            if child is None or child.proc is None or child.proc.poll() is not None:
                continue
            pid = child.proc.pid
            if name == "worker":
                age = self._heartbeat_age(pid)
            else:
                age = heartbeat_age(heartbeat_path(self.settings.state_dir, name, pid))
            if age is None or age <= limit:
                continue
            log.warning(
                "the %s role stalled (pid %d, no heartbeat for %.0f s); killing it", name, pid, age
            )
            kill_group(pid)
            child.proc.wait()
            self._died(child, now)

    def _heartbeat_age(self, pid: int) -> float | None:
        """Seconds since the heartbeat of the worker ``pid``; None if it has none yet."""
        if self._sessions is None:
            self._sessions = make_sessionmaker(make_engine(self.settings.database_url))
        worker_id = f"{socket.gethostname()}:{pid}"  # as streams/agents.py names it
        try:
            with self._sessions() as session:
                seen = session.scalar(
                    select(WorkerHeartbeat.seen_at).where(WorkerHeartbeat.worker_id == worker_id)
                )
        except SQLAlchemyError as exc:
            log.warning("could not read the worker's heartbeat: %s", exc)
            return None
        if seen is None:
            return None
        seen = seen if seen.tzinfo else seen.replace(tzinfo=UTC)
        return (datetime.now(UTC) - seen).total_seconds()

    def _died(self, child: Child, now: float) -> None:
        code, lived = child.proc.returncode, now - child.started  # type: ignore[union-attr]
        kill_group(child.proc.pid)  # type: ignore[union-attr]  # what it started goes too
        drop_heartbeat(self.settings.state_dir, child.name, child.proc.pid)  # type: ignore[union-attr]
        child.proc = None
        if lived >= STABLE_AFTER:
            child.failures = 0
        delay = backoff(child.failures)
        child.failures += 1
        child.due = now + delay
        log.warning(
            "the %s role stopped (%s) after %.1f s; restarting it in %.1f s (see %s)",
            child.name,
            _exit_status(code),
            lived,
            delay,
            self.log_dir / f"{child.name}.log",
        )

    def _watch_broker(self, now: float) -> None:
        broker = self.broker
        if broker is None:
            return
        if broker.proc is not None and broker.proc.poll() is None:
            self._probe_broker(broker, now)
        if broker.proc is not None and broker.proc.poll() is not None:
            code = broker.proc.returncode
            broker.proc = None
            if now - self.broker_started >= STABLE_AFTER:
                self.broker_failures = 0
            delay = backoff(self.broker_failures)
            self.broker_failures += 1
            self.broker_due = now + delay
            log.warning(
                "the embedded broker stopped (%s), and what it held with it; restarting it "
                "on %s in %.1f s, with the relay and the worker; the relay then sends again "
                "what the sinks have not stored",
                _exit_status(code),
                broker.bootstrap,
                delay,
            )
            self._halt([self.children[name] for name in NEEDS_BROKER], BROKER_ROLES_WAIT)
        if self.broker_due is not None and self.broker_due <= now:
            self._restart_broker(broker, now)

    def _probe_broker(self, broker: EmbeddedBroker, now: float) -> None:
        """SIGKILL a live broker that stopped answering (frozen, hung): it is then
        restarted like one that died."""
        if now < self.broker_probed + BROKER_PROBE_EVERY or broker.proc is None:
            return
        self.broker_probed = now
        if broker.answers(BROKER_PROBE_WAIT):
            self.broker_answered, self.broker_misses = time.monotonic(), 0
            return
        self.broker_misses += 1
        silent = time.monotonic() - self.broker_answered
        if self.broker_misses < BROKER_MISSES or silent <= self.settings.relay_stall_seconds:
            return
        log.warning(
            "the embedded broker stalled (pid %d, no answer for %.0f s, %d probes); killing it",
            broker.proc.pid,
            silent,
            self.broker_misses,
        )
        broker.proc.kill()
        broker.proc.wait()

    def _restart_broker(self, broker: EmbeddedBroker, now: float) -> None:
        try:
            broker.start()
        except (RuntimeError, OSError) as exc:
            self.broker_due = now + backoff(self.broker_failures)
            self.broker_failures += 1
            log.error("the embedded broker did not start again (%s); retrying", exc)
            return
        self.broker_started, self.broker_due = time.monotonic(), None
        self.broker_answered, self.broker_misses = self.broker_started, 0
        log.warning("restarted the embedded broker on %s", broker.bootstrap)
        for name in NEEDS_BROKER:
            self.children[name].due = now

    def _halt(self, children: list[Child], wait: float) -> None:
        """Stop roles on purpose, together (SIGTERM, then SIGKILL after ``wait``): no
        restart until they are made due again."""
        _terminate([c.proc for c in children if c.proc is not None], wait)
        for child in children:
            child.proc, child.due = None, None

    def stop(self) -> None:
        """Stop every role, then the broker; return once no child lives."""
        self.stopping.set()
        _terminate([c.proc for c in self.children.values() if c.proc is not None], STOP_WAIT)
        if self.broker is not None:
            self.broker.stop()

    def __enter__(self) -> Supervisor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _terminate(procs: list[subprocess.Popen[bytes]], wait: float) -> None:
    """SIGTERM each process, wait up to ``wait`` s in all, SIGKILL the group of any left,
    and reap them all (and anything still in their process groups)."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + wait
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("pid %d did not stop within %.0f s; killing it", proc.pid, wait)
        kill_group(proc.pid)
        proc.wait()


def _exit_status(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def run_up(settings: Settings, port: int) -> int:
    """`winwin up`: every role and, by default, the embedded broker, until a signal."""
    sup = Supervisor(settings, port=port)
    sup.stop_on_signals()  # SIGTERM and SIGINT alike stop everything
    with sup:
        # The token is printed only in dev, where it was generated for this checkout.
        token = (
            f"  (API token: {settings.api_token.get_secret_value()})"
            if settings.env == "dev"
            else ""
        )
        print(f"WINWIN is up: {sup.settings.public_base_url}/{token}", flush=True)
        if admin := dev_admin_sign_in(sup.settings):
            print(f"sign in as {admin}", flush=True)
        print(f"logs in {sup.log_dir}; Ctrl-C stops everything", flush=True)
        while not sup.stopping.wait(0.5):
            sup.watch()
    print("winwin: stopped", file=sys.stderr)
    return 0
