"""An open-loop HTTP GET load generator (a separate process of the redirect bench).

``python -m services.bench.loadgen URL --rate R --seconds S [--connections C]`` sends
GETs at a steady ``R`` per second over ``C`` keep-alive connections (raw asyncio
streams, HTTP/1.1) and prints one JSON line: requests, errors, achieved rate and latency
percentiles in ms. Latency is measured from each request's *scheduled* time, so a
server that falls behind is charged for the queue (no coordinated omission).
``--rate 0`` is closed-loop: every connection sends as fast as answers come.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


async def _connection(
    host: str,
    port: int,
    request: bytes,
    queue: asyncio.Queue[float | None],
    latencies: list[float],
    errors: list[int],
    statuses: dict[int, int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (scheduled := await queue.get()) is not None:
            start = scheduled or time.monotonic()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(time.monotonic() - start)
            statuses[status] = statuses.get(status, 0) + 1
            if status >= 400:
                errors[0] += 1
    finally:
        writer.close()


async def run(url: str, rate: float, seconds: float, connections: int) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: {UA}\r\n"
        "Accept: text/html\r\n\r\n"
    ).encode()
    queue: asyncio.Queue[float | None] = asyncio.Queue()
    latencies: list[float] = []
    errors: list[int] = [0]
    statuses: dict[int, int] = {}
    tasks = [
        asyncio.create_task(_connection(host, port, request, queue, latencies, errors, statuses))
        for _ in range(connections)
    ]
    t0 = time.monotonic()
    if rate > 0:
        n = int(rate * seconds)
        for i in range(n):
            at = t0 + i / rate
            if (delay := at - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            queue.put_nowait(at)
    else:
        while time.monotonic() - t0 < seconds:
            while queue.qsize() < connections:
                queue.put_nowait(0.0)
            await asyncio.sleep(0.001)
    for _ in tasks:
        queue.put_nowait(None)
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - t0
    lat = sorted(latencies)

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(len(lat) * p / 100))] * 1000, 2) if lat else -1.0

    return {
        "requests": len(lat),
        "errors": errors[0],
        "statuses": statuses,
        "rate": round(len(lat) / elapsed, 1),
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": round(lat[-1] * 1000, 2) if lat else -1.0,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("url")
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--connections", type=int, default=32)
    a = p.parse_args()
    print(json.dumps(asyncio.run(run(a.url, a.rate, a.seconds, a.connections))))


if __name__ == "__main__":
    main()
