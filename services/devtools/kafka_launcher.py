"""Run a real single-node Apache Kafka 4.x (KRaft, broker+controller in one JVM) on loopback.

A dev/bench tool, never used by a serving role: the test fixtures (``tests/conftest.py``)
and ``winwin bench scaleout --real-kafka`` start their brokers with it.

The jars are a checkout-only thing: they come from Maven Central (``make kafka-jars`` ->
``deploy/kafka/lib``) and are not in the wheel. The launcher looks in the folder named by
``WINWIN_KAFKA_HOME`` if set, else in this checkout's ``deploy/kafka``; that folder holds
``lib/kafka_2.13-*.jar`` and the config template ``server.properties``. Usage::

    with KafkaBroker() as broker:
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
        ...
        broker.stop_process()   # simulate an outage: same ports, same data dir
        broker.start_process()  # back, with everything that was written before

Everything lives in a temporary directory that ``stop()`` removes.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from services.bus.producer import kafka_reachable
from services.config import Settings

#: The folder with ``lib/`` (the jars) and ``server.properties``, when not this checkout's.
KAFKA_HOME_ENV = "WINWIN_KAFKA_HOME"
CHECKOUT_KAFKA_DIR = Path(__file__).resolve().parents[2] / "deploy" / "kafka"

# A small heap and fast-start flags: the broker shares a 2-core machine with the tests.
# C1 only (TieredStopAtLevel=1) and SerialGC cut startup CPU a lot; test loads are tiny.
JVM_FLAGS = [
    "-Xms128m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Xss512k",
    "-Djava.awt.headless=true",
    "-Djava.net.preferIPv4Stack=true",
]
LOG_FLAGS = [
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
]


class KafkaUnavailable(RuntimeError):
    """Java or the Kafka jars are missing: the broker cannot be started here."""


def find_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if not java:
        raise KafkaUnavailable("java not found (Kafka 4 needs Java 17+; set JAVA_HOME or PATH)")
    return java


def kafka_home() -> Path:
    """``$WINWIN_KAFKA_HOME``, else ``deploy/kafka`` of the checkout this module is in."""
    given = os.environ.get(KAFKA_HOME_ENV)
    return Path(given).expanduser() if given else CHECKOUT_KAFKA_DIR


def check_available(home: Path | None = None) -> str:
    """Return the java binary, or raise KafkaUnavailable with the reason."""
    home = home or kafka_home()
    where = f"${KAFKA_HOME_ENV}" if os.environ.get(KAFKA_HOME_ENV) else "this checkout"
    if not any((home / "lib").glob("kafka_2.13-*.jar")):
        raise KafkaUnavailable(
            f"no Kafka jars in {home / 'lib'} ({where}): in a checkout run `make kafka-jars`; "
            f"elsewhere set {KAFKA_HOME_ENV} to a folder holding lib/kafka_2.13-*.jar and "
            "server.properties (deploy/kafka of a checkout after `make kafka-jars`)"
        )
    if not (home / "server.properties").is_file():
        raise KafkaUnavailable(f"no server.properties in {home} ({where})")
    return find_java()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _random_cluster_id() -> str:
    # Kafka's Uuid: 16 random bytes, URL-safe base64 without padding; never starts with '-'.
    while True:
        cid = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def _die_with_parent() -> Callable[[], None] | None:
    """preexec_fn: SIGTERM the broker if the test process dies (even by SIGKILL), Linux only.

    Only used from the main thread: PR_SET_PDEATHSIG fires when the forking *thread* exits.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def set_pdeathsig() -> None:
        prctl(1, signal.SIGTERM)  # 1 == PR_SET_PDEATHSIG

    return set_pdeathsig


class KafkaBroker:
    """One Kafka broker+controller JVM on loopback, in its own temp directory."""

    def __init__(
        self,
        *,
        start_timeout: float = 90.0,
        extra_config: dict[str, str] | None = None,
        log_level: str = "info",
    ) -> None:
        self.home = kafka_home()
        self.java = check_available(self.home)
        self.start_timeout = start_timeout
        self.extra_config = dict(extra_config or {})
        self.log_level = log_level
        self.workdir = Path(tempfile.mkdtemp(prefix="winwin-kafka-"))
        self.data_dir = self.workdir / "data"
        self.config_path = self.workdir / "server.properties"
        self.log_path = self.workdir / "broker.log"
        self.port = free_port()
        self.controller_port = free_port()
        while self.controller_port == self.port:
            self.controller_port = free_port()
        self.cluster_id = _random_cluster_id()
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self.start_seconds: float | None = None  # last measured start-to-ready time
        self._formatted = False

    # -- public API -------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> KafkaBroker:
        """Write the config, format storage (first time only) and start the broker."""
        if not self._formatted:
            self._write_config()
            self._format_storage()
            self._formatted = True
        self.start_process()
        return self

    def start_process(self) -> None:
        """Start (or restart after stop_process) the same broker: same ports, same data."""
        if self.proc is not None and self.proc.poll() is None:
            return
        t0 = time.monotonic()
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop_process
        log.write(f"\n===== starting broker (pid to follow) at {time.ctime()} =====\n".encode())
        log.flush()
        self._log_file = log
        self.proc = subprocess.Popen(
            [
                self.java,
                *JVM_FLAGS,
                *LOG_FLAGS,
                f"-Dorg.slf4j.simpleLogger.defaultLogLevel={self.log_level}",
                f"-Dkafka.logs.dir={self.workdir}",
                "-cp",
                str(self.home / "lib" / "*"),
                "kafka.Kafka",
                str(self.config_path),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,  # Ctrl-C in the terminal does not hit the broker first
            preexec_fn=_die_with_parent()
            if threading.current_thread() is threading.main_thread()
            else None,
        )
        try:
            self._wait_ready(t0)
        except BaseException:
            self.stop_process()
            raise
        self.start_seconds = time.monotonic() - t0

    def stop_process(self, timeout: float = 20.0) -> None:
        """Stop the JVM (SIGTERM, then SIGKILL after ``timeout``) but keep its data."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def kill_process(self) -> None:
        """Hard-kill the JVM (SIGKILL): an abrupt crash rather than a clean shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self.stop_process()

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Stop the broker for good and delete its directory."""
        self.stop_process()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no broker log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> KafkaBroker:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------------

    def _write_config(self) -> None:
        text = (self.home / "server.properties").read_text()
        for key, value in {
            "@HOST@": "127.0.0.1",
            "@BROKER_PORT@": str(self.port),
            "@CONTROLLER_PORT@": str(self.controller_port),
            "@LOG_DIR@": str(self.data_dir),
        }.items():
            text = text.replace(key, value)
        if self.extra_config:
            text += "\n# extra_config\n" + "".join(
                f"{k}={v}\n" for k, v in self.extra_config.items()
            )
        self.config_path.write_text(text)

    def _format_storage(self) -> None:
        cmd = [
            self.java,
            *JVM_FLAGS,
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-cp",
            str(self.home / "lib" / "*"),
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "-t",
            self.cluster_id,
            "-c",
            str(self.config_path),
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(
                f"Kafka StorageTool format failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
            )

    def _wait_ready(self, t0: float) -> None:
        """Wait until the broker's port answers and an admin client can list topics."""
        just_this_broker = Settings.model_construct(kafka_bootstrap=self.bootstrap)
        deadline = t0 + self.start_timeout
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"Kafka broker exited with status {self.proc.returncode} while starting.\n"
                    f"--- {self.log_path} (tail) ---\n{self.log_tail()}"
                )
            # Cheap check first: no admin client until the port accepts connections.
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
            except OSError as e:
                last_error = e
                time.sleep(0.1)
                continue
            if kafka_reachable(just_this_broker, timeout_ms=5000):
                return
            last_error = ConnectionError("port open, but no admin client could list topics")
            time.sleep(0.2)
        raise TimeoutError(
            f"Kafka broker on {self.bootstrap} not ready after {self.start_timeout:.0f}s "
            f"(last error: {last_error!r}).\n--- {self.log_path} (tail) ---\n{self.log_tail()}"
        )


if __name__ == "__main__":  # quick manual check: python -m services.devtools.kafka_launcher
    t = time.monotonic()
    with KafkaBroker() as b:
        print(f"broker {b.bootstrap} ready in {time.monotonic() - t:.2f}s (incl. format)")
        b.stop_process()
        b.start_process()
        print(f"restarted in {b.start_seconds:.2f}s")
