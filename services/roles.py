"""The long-running roles (api, worker, dispatcher, relay) and the supervisor that runs
them together (``winwin up`` / ``winwin demo``), each in its own process."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from services.config import Settings, get_settings

log = logging.getLogger(__name__)
ROLES = ("relay", "worker", "dispatcher", "api")


def run_api(settings: Settings, port: int, host: str = "127.0.0.1") -> None:
    import uvicorn

    from services.api import create_app

    uvicorn.run(
        create_app(settings=settings),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def run_worker(settings: Settings) -> None:
    from streams.worker import run

    run(settings)


def run_relay(settings: Settings) -> None:
    from services.bus.relay import Relay
    from services.db.session import make_engine, make_sessionmaker

    relay = Relay(settings, make_sessionmaker(make_engine(settings.database_url)))
    _stop_on_signals(relay.stop)
    relay.run()


def due_work(container):  # type: ignore[no-untyped-def]
    """Everything the dispatcher role does on each tick: email campaigns, toolkits
    (and the other channels as they land). Each step takes ``now``."""
    from functools import partial

    from services.campaigns.dispatch import Dispatcher, make_sender
    from services.campaigns.social import publish_due
    from services.campaigns.toolkits import build_due
    from services.journeys import tick

    return [
        ("journeys", partial(tick, container)),
        ("email", Dispatcher(container, make_sender(container)).dispatch_due),
        ("toolkits", partial(build_due, container)),
        ("social", partial(publish_due, container)),
    ]


def run_dispatcher(settings: Settings, poll: float = 1.0) -> None:
    from services.bootstrap import bootstrap

    container = bootstrap(settings)
    stop = threading.Event()
    _stop_on_signals(stop.set)
    steps = due_work(container)
    while not stop.is_set():
        for name, step in steps:
            if stop.is_set():
                break
            try:
                step(container.now())
            except Exception:  # noqa: BLE001 - the role keeps running; the next tick retries
                log.exception("%s: dispatch step failed; retrying", name)
        stop.wait(poll)


def _stop_on_signals(callback) -> None:  # type: ignore[no-untyped-def]
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: callback())


class Supervisor:
    """Starts the embedded broker when no Kafka is configured, migrates the database,
    then runs every role as a child process; stops them all (SIGTERM, then SIGKILL)."""

    def __init__(
        self, settings: Settings | None = None, port: int = 8000, log_dir: Path | None = None
    ):
        self.settings = settings or get_settings()
        self.port = port
        self.log_dir = log_dir or self.settings.state_dir / "logs"
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.env: dict[str, str] = dict(os.environ)
        self._stack = ExitStack()

    def start(self) -> Supervisor:
        from services.db.migrate import upgrade

        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.embedded_kafka:
            from services.bus.embedded import EmbeddedBroker

            broker = self._stack.enter_context(EmbeddedBroker(log_path=self.log_dir / "broker.log"))
            self.env |= {
                "WINWIN_KAFKA_BOOTSTRAP": broker.bootstrap,
                "WINWIN_KAFKA_PARTITIONS": str(self.settings.partitions),
            }
        self.env |= {
            "WINWIN_PUBLIC_BASE_URL": self.settings.public_base_url,
            "WINWIN_STATE_DIR": str(self.settings.state_dir),
        }
        upgrade(self.settings.database_url)
        for role in ROLES:
            self.spawn(role)
        return self

    def spawn(self, role: str) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", "services.cli", role]
        if role == "api":
            args += ["--port", str(self.port)]
        out = open(self.log_dir / f"{role}.log", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(args, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.children[role] = proc
        return proc

    def check(self) -> str | None:
        """The first role that died, if any."""
        return next((r for r, p in self.children.items() if p.poll() is not None), None)

    def stop(self) -> None:
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.children.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        self._stack.close()

    def __enter__(self) -> Supervisor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
