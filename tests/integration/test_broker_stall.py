"""A frozen embedded broker is noticed: `winwin up` probes it with a Kafka request, and
one that has not answered for ``WINWIN_RELAY_STALL_SECONDS`` is SIGKILLed and started
again with the relay and the worker, like one that died (a real Tansu broker)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from services.bus.embedded import EmbeddedBroker
from services.config import Settings
from services.supervisor import NEEDS_BROKER, Child, Supervisor
from tests.stack import wait_for


def test_a_frozen_broker_is_killed_and_started_again_with_its_roles(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'winwin.db'}",
        state_dir=tmp_path,
        relay_stall_seconds=1,
    )
    sup = Supervisor(settings, log_dir=tmp_path / "logs")
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    for name in NEEDS_BROKER:  # as the supervisor starts them
        sup.children[name] = Child(name, [], subprocess.Popen(sleep, start_new_session=True))
    broker = sup.broker = EmbeddedBroker(log_path=tmp_path / "broker.log").start()
    sup.broker_started = sup.broker_answered = time.monotonic()
    frozen = broker.proc
    assert frozen is not None
    try:
        sup._watch_broker(time.monotonic())  # it answers: left alone
        assert broker.proc is frozen and sup.broker_misses == 0
        os.kill(frozen.pid, signal.SIGSTOP)
        socket.create_connection(("127.0.0.1", broker.port), timeout=1).close()  # the kernel
        assert not broker.answers(0.2)  # accepts; only a request tells it is frozen

        def restarted() -> bool:
            sup._watch_broker(time.monotonic())
            return broker.proc is not None and broker.proc is not frozen

        wait_for(restarted, 30, 0.1, "the frozen broker restarted")
        assert frozen.returncode == -signal.SIGKILL
        assert broker.answers() and sup.broker_misses == 0
        for name in NEEDS_BROKER:  # stopped with it, started again with it
            assert sup.children[name].proc is None and sup.children[name].due is not None
    finally:
        with contextlib.suppress(ProcessLookupError):
            frozen.kill()
        for child in sup.children.values():
            if child.proc is not None:
                child.proc.kill()
        broker.stop()
