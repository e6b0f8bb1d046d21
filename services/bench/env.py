"""What every benchmark stands on: a broker, a fresh database, a topic prefix, child roles.

Real Kafka when ``WINWIN_KAFKA_BOOTSTRAP`` is set, else the embedded Tansu broker;
a fresh SQLite file in a temporary directory unless ``WINWIN_DATABASE_URL`` is set (a
PostgreSQL URL gets a fresh database on that server, dropped afterwards). Every run
uses its own topic prefix, so runs never see each other's messages.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from services.bus.embedded import EmbeddedBroker
from services.config import Settings
from services.db.migrate import upgrade
from services.db.models import WorkerHeartbeat
from services.db.session import make_engine, make_sessionmaker

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "bench-api-token-0123456789abcdef"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def progress(message: str) -> None:
    """One line of progress on stderr (stdout is for the table or the JSON)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    predicate: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what or 'a condition'}")


class BenchEnv:
    """A broker, a database and the environment of the child processes of one bench."""

    def __init__(
        self, name: str, partitions: int | None = None, broker: bool = True, postgres: bool = True
    ):
        """``broker=False``: no Kafka at all (a bench of SQL and the API only);
        ``postgres=False``: SQLite even when ``WINWIN_DATABASE_URL`` names PostgreSQL."""
        self.name = name
        self.broker, self.postgres = broker, postgres
        self.dir = Path(tempfile.mkdtemp(prefix=f"winwin-bench-{name}-"))
        self.children: list[subprocess.Popen[bytes]] = []
        self._broker: Any = None
        self._pg_admin: tuple[str, str] | None = None
        self.partitions = partitions

    def __enter__(self) -> BenchEnv:
        bootstrap = os.environ.get("WINWIN_KAFKA_BOOTSTRAP", "")
        if not self.broker:
            bootstrap = ""
        elif not bootstrap:
            self._broker = EmbeddedBroker(log_path=self.dir / "broker.log").start()
            bootstrap = self._broker.bootstrap
        self.database_url = self._database()
        self.vars = {
            "WINWIN_ENV": "dev",
            "WINWIN_DATABASE_URL": self.database_url,
            "WINWIN_KAFKA_BOOTSTRAP": bootstrap,
            "WINWIN_TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:8]}-",
            "WINWIN_STATE_DIR": str(self.dir / "state"),
            "WINWIN_SECRET_KEY": "bench-secret-key-0123456789abcdef",
            "WINWIN_API_TOKEN": TOKEN,
        }
        if self.partitions or self._broker:
            self.vars["WINWIN_KAFKA_PARTITIONS"] = str(self.partitions or 2)
        (self.dir / "state").mkdir()
        self.settings = self.make_settings()
        upgrade(self.database_url)

        self.engine = make_engine(self.database_url)
        self.sessions = make_sessionmaker(self.engine)
        return self

    def make_settings(self, **extra: str) -> Settings:
        values = self.vars | extra
        fields: dict[str, Any] = {k[len("WINWIN_") :].lower(): v for k, v in values.items()}
        return Settings(**fields)  # pydantic reads the strings as the environment would

    def _database(self) -> str:
        url = os.environ.get("WINWIN_DATABASE_URL", "")
        if not (self.postgres and url.startswith("postgresql")):
            return f"sqlite:///{self.dir / 'bench.db'}"
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        db = f"winwin_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{db}"'))
        admin.dispose()
        self._pg_admin = (url, db)
        return make_url(url).set(database=db).render_as_string(hide_password=False)

    # -- child processes ---------------------------------------------------------------

    def spawn(self, name: str, args: list[str], **extra_env: str) -> subprocess.Popen[bytes]:
        """A child process (``python args...``) with this bench's environment."""
        log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        command = [sys.executable, *args]
        profile_dir = os.environ.get("WINWIN_BENCH_PROFILE")  # py-spy collapsed stacks per role
        spy = shutil.which(
            "py-spy", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
        )
        if profile_dir and spy:
            out = Path(profile_dir) / f"{self.name}-{name}.txt"
            command = [
                spy,
                "record",
                "--format",
                "raw",
                "--rate",
                "200",
                "--idle",  # wall time: where the worker waits, not only where it computes
                "--threads",
                "--subprocesses",  # the worker's sink process too
                "-o",
                str(out),
                "--",
                *command,
            ]
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=os.environ | self.vars | extra_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.children.append(proc)
        return proc

    def role(self, role: str, *args: str) -> subprocess.Popen[bytes]:
        return self.spawn(role, ["-m", "services.cli", role, *args])

    def log_tail(self, name: str, chars: int = 2000) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
        if proc.poll() is None:
            if os.environ.get("WINWIN_BENCH_PROFILE"):
                proc.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
            else:
                proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def count(self, model: Any, *where: Any) -> int:
        with self.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.children):
            self.stop(proc)
        self.engine.dispose()
        if self._broker:
            self._broker.stop()
        if self._pg_admin:
            from sqlalchemy import create_engine

            url, db = self._pg_admin
            admin = create_engine(url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            admin.dispose()
        if not os.environ.get("WINWIN_BENCH_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


def wait_http(port: int, path: str = "/healthz", timeout: float = 60) -> None:
    """Until a server on 127.0.0.1:port answers ``path``."""
    import httpx

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    wait_for(up, timeout, 0.2, f"HTTP on port {port}")


def wait_worker(env: BenchEnv, timeout: float = 120) -> None:
    """Until a stream worker has partitions assigned (its heartbeat says so)."""

    def consuming() -> bool:
        with env.sessions() as s:
            infos = s.scalars(select(WorkerHeartbeat.info)).all()
        return any((info or {}).get("assigned_partitions", 0) > 0 for info in infos)

    try:
        wait_for(consuming, timeout, 0.3, "the stream worker to get partitions")
    except TimeoutError:
        raise TimeoutError(f"worker not consuming; log:\n{env.log_tail('worker')}") from None
