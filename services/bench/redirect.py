"""Redirect bench: ``GET /r/{token}`` of the real API against a bare Starlette 302.

Both servers run as ``uvicorn`` processes with the settings of ``winwin api`` (one
process, loopback, no access log). The load comes from other processes: ``wrk`` for
the peak (when installed; else the asyncio load generator in closed loop), then the
open-loop generator at half of the API's peak for the latency percentiles. Afterwards
the relay and a worker run until every click the API accepted is an engagement event
in SQL (it went through Kafka).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from services.bench.env import (
    BROWSER,
    ROOT,
    TOKEN,
    BenchEnv,
    free_port,
    progress,
    wait_http,
    wait_worker,
)
from services.bench.figures import Figure
from services.db import models

PEAK_SECONDS = 10.0
HALF_SECONDS = 10.0
WARMUP_SECONDS = 2.0
LOADGEN = Path(__file__).with_name("loadgen.py")  # stdlib only


def bench_redirect(
    peak_seconds: float = PEAK_SECONDS,
    half_seconds: float = HALF_SECONDS,
    warmup_seconds: float = WARMUP_SECONDS,
) -> list[Figure]:
    with BenchEnv("redirect") as env:
        api_port, bare_port = free_port(), free_port()
        env.vars["WINWIN_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{api_port}"
        env.role("api", "--port", str(api_port))
        env.spawn("bare", ["-m", "services.bench.bare", "--port", str(bare_port)])
        wait_http(api_port)
        wait_http(bare_port)
        path = _link_path(api_port)
        peak = {}
        for name, port in (("bare", bare_port), ("api", api_port)):
            _load(port, path, 0, warmup_seconds)  # warm-up: caches, connections
            peak[name] = _load(port, path, 0, peak_seconds)
            progress(f"redirect: {name} peak {peak[name]['rate']:,.0f} req/s")
        half_rate = peak["api"]["rate"] / 2
        half = {
            name: _load(port, path, half_rate, half_seconds)
            for name, port in (("api", api_port), ("bare", bare_port))
        }
        progress(
            f"redirect: at {half_rate:,.0f} req/s p99 api {half['api']['p99_ms']} ms, "
            f"bare {half['bare']['p99_ms']} ms"
        )
        served = sum(r["statuses"].get(302, 0) for r in (peak["api"], half["api"]))
        clicks = _clicks_through_kafka(env, served)
    details = {
        "peak": peak,
        "half_load": half,
        "half_rate": round(half_rate, 1),
        "clicks_served": served,
    } | clicks
    api, bare = peak["api"], peak["bare"]
    return [
        Figure(
            "redirect",
            "GET /r peak",
            api["rate"],
            "req/s",
            ">= 0.5 of baseline",
            api["rate"] / bare["rate"] >= 0.5,
            bare["rate"],
            "bare Starlette 302",
            details,
        ),
        Figure(
            "redirect",
            "p99 at half of peak",
            half["api"]["p99_ms"],
            "ms",
            "<= 10 ms",
            half["api"]["p99_ms"] <= 10,
            half["bare"]["p99_ms"],
            "bare, same rate",
        ),
        Figure(
            "redirect",
            "clicks in SQL via Kafka",
            clicks["clicks_in_sql"],
            "clicks",
            "= accepted",
            clicks["all_through"],
        ),
    ]


def _link_path(port: int) -> str:
    import httpx

    r = httpx.post(
        f"http://127.0.0.1:{port}/api/v1/links",
        timeout=10,
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={"destination": "https://network.example.org/diet", "channel": "social"},
    )
    r.raise_for_status()
    probe = httpx.get(
        f"http://127.0.0.1:{port}{(path := '/r/' + str(r.json()['token']))}",
        headers={"User-Agent": BROWSER},
        timeout=10,
    )
    if probe.status_code != 302:
        raise RuntimeError(f"/r answered {probe.status_code}")
    return path


def _load(port: int, path: str, rate: float, seconds: float) -> dict[str, Any]:
    """One load run from another process: wrk for closed loop when present."""
    url = f"http://127.0.0.1:{port}{path}"
    if rate == 0 and shutil.which("wrk"):
        return _wrk(url, seconds)
    args = [
        sys.executable,
        str(LOADGEN),  # its file, not `-m`: the package would import every bench (~4 s CPU)
        url,
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        "--connections",
        "32" if rate else "64",
    ]
    out = subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120, check=True
    )
    result = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    result["statuses"] = {int(k): v for k, v in result["statuses"].items()}
    return result


def _wrk(url: str, seconds: float) -> dict[str, Any]:
    args = [
        "wrk",
        "-t2",
        "-c64",
        f"-d{max(1, int(seconds))}s",
        "--latency",
        "-H",
        f"User-Agent: {BROWSER}",
        url,
    ]
    out = subprocess.run(
        args, capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "requests": requests,
        "errors": errors,
        "statuses": {302: requests - errors},
        "rate": rate,
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else None,
        "tool": "wrk",
    }


def _clicks_through_kafka(env: BenchEnv, served: int) -> dict[str, Any]:
    """Start relay + worker; wait until every accepted click is an event in SQL."""
    E, A = models.EngagementEvent, models.AcceptedEvent
    time.sleep(0.5)  # the gatherer flushes within milliseconds
    accepted = env.count(A, A.event_id.like("click:%"))
    env.role("relay")
    env.role("worker")
    wait_worker(env)
    progress(f"redirect: {accepted} clicks accepted; waiting for them in SQL via Kafka")
    deadline = time.monotonic() + 300
    while env.count(E, E.type == "link.click") < accepted and time.monotonic() < deadline:
        time.sleep(0.5)
    in_sql = env.count(E, E.type == "link.click")
    with env.sessions() as s:
        bots = len(
            s.scalars(select(E.event_id).where(E.type == "link.click", E.bot.is_(True))).all()
        )
    return {
        "clicks_accepted": accepted,
        "clicks_in_sql": in_sql,
        "clicks_flagged_bot": bots,
        "all_through": in_sql == accepted and accepted >= served,
    }
