"""`winwin up` as a user runs it, for the supervision and chaos tests: the supervisor
process, its children by role, every process of the stack, and its log."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from services.bench.memory import child_pids
from tests.e2e.test_processes import _free_port, _ready
from tests.integration.test_reliability_crash import _alive
from tests.stack import BROWSER, ROOT, TOKEN, wait_for

#: What each child of the supervisor runs, told apart by its command line.
MARKS = {
    "broker": b"tansu",
    "relay": b"services.cli\x00relay",
    "worker": b"services.cli\x00worker",
    "dispatcher": b"services.cli\x00dispatcher",
    "api": b"services.cli\x00api",
}


class Up:
    """``winwin up --port N`` in a working directory of its own (its state dir marks
    every process of the stack: they all inherit it in their environment)."""

    def __init__(self, workdir: Path, **env: str):
        self.workdir, self.port = workdir, _free_port()
        self.state = workdir / "state"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("WINWIN_")} | {
            "WINWIN_STATE_DIR": str(self.state),
            "WINWIN_DATABASE_URL": f"sqlite:///{workdir}/winwin.db",
            "WINWIN_API_TOKEN": TOKEN,
            "WINWIN_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.port}",
            "PYTHONPATH": str(ROOT),
        }
        self.env |= env
        self.log_path = workdir / "up.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Up:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "up", "--port", str(self.port)],
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {TOKEN}", "User-Agent": BROWSER}
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", headers=headers, timeout=30)

    def wait_ready(self, client: httpx.Client, timeout: float = 120) -> None:
        wait_for(lambda: _ready(client), timeout, 0.5, f"/readyz\n{self.logs()}")

    def children(self) -> dict[str, int]:
        """The supervisor's live children by role (the broker's too)."""
        assert self.proc is not None
        found = {}
        for pid in child_pids(self.proc.pid):
            command = _read(f"/proc/{pid}/cmdline")
            role = next((r for r, mark in MARKS.items() if mark in command), None)
            if role and _alive(pid):
                found[role] = pid
        return found

    def kill(self, role: str, sig: int) -> int:
        """Send ``sig`` to the live process of ``role``; its pid."""
        pid = wait_for(lambda: self.children().get(role), 60, 0.1, what=f"a live {role}")
        os.kill(pid, sig)
        return int(pid)

    def wait_restarted(self, role: str, old: int, timeout: float = 90) -> int:
        def new() -> int | None:
            pid = self.children().get(role)
            return pid if pid not in (None, old) else None

        return int(wait_for(new, timeout, 0.1, what=f"the {role} restarted\n{self.logs()}"))

    def stack_processes(self) -> list[int]:
        """Every live process whose environment names this stack's state dir."""
        mark = f"WINWIN_STATE_DIR={self.state}\x00".encode()
        return [
            int(p.parent.name)
            for p in Path("/proc").glob("[0-9]*/environ")
            if mark in _read(str(p)) and int(p.parent.name) != os.getpid()
        ]

    def stop(self, timeout: float = 90) -> int:
        """SIGTERM to the supervisor; its exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def logs(self, chars: int = 1500) -> str:
        files = [self.log_path, *sorted((self.state / "logs").glob("*.log"))]
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in files)

    def close(self) -> None:
        """After a failure: nothing of the stack may outlive the test."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for pid in self.stack_processes():
            _kill(pid)


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def post_until_answered(client: httpx.Client, batch: list[dict[str, Any]]) -> dict[str, Any]:
    """POST a batch of events until an answer comes (the API may be down or restarting;
    a batch whose answer was lost is answered as duplicates the next time)."""
    while True:
        try:
            r = client.post("/api/v1/events", json=batch)
        except httpx.TransportError:
            r = None
        if r is not None and r.status_code == 202:
            body: dict[str, Any] = r.json()
            assert not body["rejected"] and body["accepted"] + body["duplicates"] == len(batch)
            return body
        assert r is None or r.status_code >= 500, f"{r.status_code}: {r.text[:300]}"
        time.sleep(0.2)
