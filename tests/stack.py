"""A WINWIN stack for integration tests: real Kafka, a real database, the API in
process (Starlette's TestClient), the relay in a thread, the stream worker as a child
process (so that tests can SIGKILL and restart it).

Each stack gets its own topic prefix and consumer group, so tests share one broker
without seeing each other's messages.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from services.bus.relay import Relay
from services.config import Settings
from services.db.migrate import upgrade
from services.db.models import WorkerHeartbeat
from services.db.session import make_engine, make_sessionmaker
from services.supervisor import EMBEDDED_FAUST

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-api-token-0123456789abcdefgh"  # 32+: production mode refuses less
#: Secrets production mode accepts (32+ characters, varied, not equal to each other).
GOOD_SECRET, GOOD_TOKEN = (
    "a-real-secret-key-0123456789abcdefgh",
    "a-real-api-token-0123456789abcdefgh",
)
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def signed_stack(kafka_bootstrap: str, database_url: str, workdir: Path) -> Stack:
    """A stack whose Event Webhook posts must be signed: ``stack.signer`` signs them."""
    from tests.fakes.sendgrid_server import WebhookSigner

    signer = WebhookSigner()
    s = Stack(
        kafka_bootstrap, database_url, workdir, sendgrid_webhook_public_key=signer.public_key_b64
    )
    s.signer = signer  # type: ignore[attr-defined]
    return s


def email_campaign(client: Any, template: dict[str, Any], **campaign: Any) -> str:
    """Create an email template (``template``: its subject, html, text) and a campaign on
    it (``campaign``: name, resources, ...) through the API; the campaign's id."""
    tpl = client.post("/api/v1/templates", json={"name": "t", "channel": "email"} | template)
    assert tpl.status_code == 201, tpl.text
    body = {"name": "c", "channel": "email", "template_id": tpl.json()["id"]} | campaign
    created = client.post("/api/v1/campaigns", json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 60.0,
    interval: float = 0.1,
    what: str = "condition",
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Stack:
    def __init__(
        self,
        kafka_bootstrap: str,
        database_url: str,
        workdir: Path,
        partitions: int = 4,
        **overrides: Any,
    ):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.env_vars = {
            "WINWIN_ENV": "dev",
            "WINWIN_DATABASE_URL": database_url,
            "WINWIN_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "WINWIN_KAFKA_PARTITIONS": str(partitions),
            "WINWIN_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:10]}-",
            "WINWIN_STATE_DIR": str(workdir / "state"),
            "WINWIN_SECRET_KEY": "test-secret-key-0123456789abcdef",
            "WINWIN_API_TOKEN": TOKEN,
            "WINWIN_PUBLIC_BASE_URL": "http://testserver",
        } | {f"WINWIN_{k.upper()}": str(v) for k, v in overrides.items()}
        self.settings = Settings(
            **{k[len("WINWIN_") :].lower(): v for k, v in self.env_vars.items()}
        )
        upgrade(database_url)
        self.sessions = make_sessionmaker(make_engine(database_url))
        self.workers: list[subprocess.Popen[bytes]] = []
        self._relay: Relay | None = None
        self._relay_thread: threading.Thread | None = None

    # -- roles -------------------------------------------------------------------------

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"worker-{len(self.workers)}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "worker"],
            cwd=ROOT,
            # As `winwin up` runs its worker: a SIGKILLed worker's partitions move after
            # 10 s, not Faust's default 60 s (a test's environment may set its own).
            env=EMBEDDED_FAUST | os.environ | self.env_vars,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(proc)
        return proc

    def wait_worker_consuming(self, since: float | None = None, timeout: float = 90) -> None:
        from datetime import UTC, datetime

        start = datetime.fromtimestamp(since or time.time() - 1, UTC)

        def consuming() -> bool:
            with self.sessions() as s:
                for seen, info in s.execute(select(WorkerHeartbeat.seen_at, WorkerHeartbeat.info)):
                    seen = seen if seen.tzinfo else seen.replace(tzinfo=UTC)
                    if seen >= start and (info or {}).get("assigned_partitions", 0) > 0:
                        return True
            return False

        try:
            wait_for(consuming, timeout, 0.2, "the stream worker to consume")
        except AssertionError:
            raise AssertionError(
                f"worker not consuming; log:\n{self.worker_log()[-3000:]}"
            ) from None

    def worker_log(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.workdir.glob("worker-*.log"))
        )

    def kill_worker(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        proc.send_signal(sig)
        proc.wait(30)

    def start_relay(self) -> Relay:
        self._relay = Relay(self.settings, self.sessions)
        self._relay_thread = threading.Thread(target=self._relay.run, daemon=True)
        self._relay_thread.start()
        return self._relay

    def client(self, **kwargs: Any):  # type: ignore[no-untyped-def]
        from fastapi.testclient import TestClient

        from services.api import create_app
        from services.bootstrap import bootstrap

        app = create_app(bootstrap(self.settings, **kwargs))
        return TestClient(app, headers={"Authorization": f"Bearer {TOKEN}", "User-Agent": BROWSER})

    def count(self, model: Any, *where: Any) -> int:
        with self.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    def stop_relay(self) -> None:
        """Stop the relay thread (at most ~10 s: a send to a broker that is gone may block
        it longer; stop it before a test kills its broker)."""
        if self._relay:
            self._relay.stop()
            if self._relay_thread:
                self._relay_thread.join(10)

    def close(self) -> None:
        """Stop the relay and kill the workers: the test has asserted what it asserts, and a
        Faust worker's graceful stop takes seconds (a SIGKILLed worker's sink process dies
        with it: test_reliability_crash)."""
        self.stop_relay()
        for proc in self.workers:
            if proc.poll() is None:
                proc.kill()
        for proc in self.workers:
            proc.wait(20)
