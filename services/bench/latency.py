"""Latency bench: events POSTed over HTTP at a steady rate → counted in the API.

The real roles run as processes (API under uvicorn, relay, one stream worker). Every
50 ms a batch of events is POSTed; batch ``b`` is made of distinct people on its own
day (2010-01-01 + b days), so the ``aware`` count of that day in
``GET /api/v1/metrics/stages?period=day`` says how many of the batch's events are
visible. Polling that every ~20 ms gives each event's visibility time; its latency is
from the start of its POST to the poll answer that first showed it.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import date, timedelta
from typing import Any

from services.bench.env import TOKEN, BenchEnv, free_port, progress, wait_http, wait_worker
from services.bench.figures import Figure

DAY0 = date(2010, 1, 1)
TYPES = ["page.view", "email.open", "resource.view", "resource.download", "story.shared"]


def bench_latency(rate: int = 2000, seconds: float = 20.0, interval: float = 0.05) -> list[Figure]:
    per_batch = max(1, int(rate * interval))
    batches = int(seconds / interval)
    with BenchEnv("latency") as env:
        port = free_port()
        env.vars["WINWIN_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
        env.role("api", "--port", str(port))
        env.role("relay")
        env.role("worker")
        wait_http(port)
        wait_worker(env)
        progress(
            f"latency: posting {per_batch} events every {interval * 1000:.0f} ms for {seconds:.0f}s"
        )
        out = asyncio.run(_run(port, batches, per_batch, interval))
    lat = sorted(out["latencies"])
    p50, p99 = _pct(lat, 50), _pct(lat, 99)
    details = {
        "events": batches * per_batch,
        "visible": len(lat),
        "rate_per_s": rate,
        "post_p50_ms": round(_pct(sorted(out["post"]), 50) * 1000, 1),
        "post_p99_ms": round(_pct(sorted(out["post"]), 99) * 1000, 1),
        "max_ms": round(lat[-1] * 1000, 1) if lat else None,
        "polls": out["polls"],
        "poll_p50_ms": round(_pct(sorted(out["poll"]), 50) * 1000, 1),
    }
    complete = len(lat) == batches * per_batch
    return [
        Figure(
            "latency",
            f"POST→visible p50 @{rate}/s",
            p50 * 1000,
            "ms",
            "<= 250 ms",
            complete and p50 <= 0.25,
            details=details,
        ),
        Figure(
            "latency",
            f"POST→visible p99 @{rate}/s",
            p99 * 1000,
            "ms",
            "<= 1000 ms",
            complete and p99 <= 1.0,
        ),
    ]


def _pct(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * pct / 100))]


def _batch(b: int, n: int, run: str, rng: random.Random) -> list[dict[str, Any]]:
    at = f"{(DAY0 + timedelta(days=b)).isoformat()}T12:00:00Z"
    return [
        {
            "event_id": f"{run}-{b}-{i}",
            "type": rng.choice(TYPES),
            "occurred_at": at,
            "person_ref": f"{run}-{b}-{i}",
        }
        for i in range(n)
    ]


async def _run(port: int, batches: int, per_batch: int, interval: float) -> dict[str, Any]:
    import httpx

    rng, run = random.Random(3), f"lat{random.randrange(10**6)}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    sent_at: dict[int, float] = {}
    state: dict[str, Any] = {"latencies": [], "post": [], "poll": [], "polls": 0, "seen": {}}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=headers, limits=limits, timeout=30
    ) as client:

        async def post(b: int) -> None:
            body = _batch(b, per_batch, run, rng)
            sent_at[b] = start = time.monotonic()
            r = await client.post("/api/v1/events", json=body)
            state["post"].append(time.monotonic() - start)
            if r.status_code != 202 or r.json()["accepted"] != per_batch:
                raise RuntimeError(f"POST answered {r.status_code}: {r.text[:200]}")

        poller = asyncio.create_task(_poll(client, batches, per_batch, sent_at, state))
        t0, posts = time.monotonic(), []
        for b in range(batches):
            await asyncio.sleep(max(0.0, t0 + b * interval - time.monotonic()))
            posts.append(asyncio.create_task(post(b)))
        await asyncio.gather(*posts)
        try:
            await asyncio.wait_for(poller, 60)
        except TimeoutError:
            progress("latency: not every event became visible within 60 s")
    return state


async def _poll(
    client: Any, batches: int, per_batch: int, sent_at: dict[int, float], state: dict[str, Any]
) -> None:
    last = (DAY0 + timedelta(days=batches - 1)).isoformat()
    params = {"period": "day", "from": DAY0.isoformat(), "to": last}
    seen: dict[int, int] = state["seen"]
    while sum(seen.values()) < batches * per_batch:
        start = time.monotonic()
        r = await client.get("/api/v1/metrics/stages", params=params)
        now = time.monotonic()
        state["polls"] += 1
        state["poll"].append(now - start)
        for b, row in enumerate(r.json()["rows"]):
            new = row["aware"] - seen.get(b, 0)
            if new > 0 and b in sent_at:
                state["latencies"] += [now - sent_at[b]] * new
                seen[b] = row["aware"]
        await asyncio.sleep(max(0.0, 0.02 - (time.monotonic() - start)))
