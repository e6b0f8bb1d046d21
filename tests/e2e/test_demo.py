"""`winwin demo --headless` on the embedded default (Tansu broker + SQLite), as a user runs it:
its summary gives the figures it read back from the API at the end (every month of the year
has people, all three channels and all three messengers made people aware, the journey
acted), and the test checks them."""

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


def test_headless_demo_tells_the_whole_story(tmp_path):
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
            "15",  # 30 before: at 15 the figures are still far from 0 (email 359, social 54)
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
    months = _figures(proc.stdout, "aware per month")
    assert len(months) == 12 and all(n > 0 for n in months.values()), months
    channels = _figures(proc.stdout, "people made aware per channel")
    assert all(channels.get(ch, 0) > 0 for ch in ("email", "social", "toolkit")), channels
    messengers = _figures(proc.stdout, "people made aware per messenger")
    assert set(messengers) == {"maria", "dr-lee", "sam"} and min(messengers.values()) > 0
    journey = _figures(proc.stdout, "journey 'thank readers'")
    assert journey["acted"] > 0 and journey["triggered"] >= journey["acted"], journey


def _figures(summary: str, label: str) -> dict[str, int]:
    """``key=number`` pairs of the summary line that starts with ``label``."""
    line = next(x for x in summary.splitlines() if x.strip().startswith(label + ":"))
    return {k: int(v) for k, v in re.findall(r"(\S+)=(\d+)", line.split(":", 1)[1])}
