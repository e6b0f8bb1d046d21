"""`winwin demo --headless` on the embedded default (Tansu broker + SQLite), as a user runs it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_headless_demo_counts_aware_use_and_produce(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WINWIN_")}
    env |= {
        "WINWIN_STATE_DIR": str(tmp_path / "state"),
        "WINWIN_DATABASE_URL": f"sqlite:///{tmp_path}/demo.db",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "demo",
            "--headless",
            "--duration",
            "30",
            "--port",
            str(_free_port()),
            "--families",
            "600",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    logs = "\n".join(
        p.read_text(errors="replace")[-2000:] for p in (tmp_path / "state" / "logs").glob("*.log")
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\nlogs:\n{logs}"
    m = re.search(r"aware=(\d+) use=(\d+) produce=(\d+)", proc.stdout)
    assert m, proc.stdout
    aware, use, produce = map(int, m.groups())
    assert aware >= use >= produce > 0
