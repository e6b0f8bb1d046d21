"""How long the stream's batches wait while a read computes a new attribution window.

A script, not a test (timings are not asserted): on a SQLite database of the reads
benchmark's network (``--build N`` makes one of N events and N/10 people, ~4 minutes per
million here; keep a copy, as the window's credits are written into it), a read makes
``--window`` days ready (``other_window_ready``, in steps), while another process stores a
batch of 20 stage events every 0.5 s through the sink, as the stream does. Prints one JSON
line: the computation's time, its steps, and the batches' median, longest and failed.

    python -m tests.bench.window_vs_stream /tmp/w1m.db --build 1000000
    cp /tmp/w1m.db /tmp/run.db && python -m tests.bench.window_vs_stream /tmp/run.db
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

BATCH, EVERY = 20, 0.5


def stream(url: str, stop: Any, out: Any) -> None:
    """The stream's part: a batch every ``EVERY`` seconds; each batch's time, and failures."""
    from services.analytics.sink import AttributionSink
    from services.db.session import make_engine, make_sessionmaker

    sink = AttributionSink(make_sessionmaker(make_engine(url)))
    rng, times, failed, n = random.Random(7), [], 0, 0
    while not stop.is_set():
        batch = []
        for _ in range(BATCH):
            n += 1
            at = datetime(2018, 6, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(10**5))
            batch.append({"event_id": f"wvs-{time.time_ns()}-{n}", "type": "resource.use",
                          "occurred_at": at.isoformat().replace("+00:00", "Z"),
                          "person": f"p{rng.randrange(1, 100_000):032x}"})  # fmt: skip
        began = time.perf_counter()
        try:
            sink.write(batch, [])
        except Exception as exc:  # noqa: BLE001 - counted: what the stream would hit
            failed += 1
            print("a batch failed:", type(exc).__name__, str(exc)[:80], flush=True)
        times.append(time.perf_counter() - began)
        time.sleep(EVERY)
    out.put((times, failed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sqlite_file")
    parser.add_argument("--window", type=int, default=7)
    parser.add_argument("--build", type=int, metavar="N", help="first store N events")
    args = parser.parse_args()
    url = f"sqlite:///{args.sqlite_file}"
    if args.build:
        from services.bench.network import build_network
        from services.bench.reads import ingest
        from services.bus.envelopes import MAX_RECORDS
        from services.db.migrate import upgrade

        upgrade(url)
        print(ingest(url, build_network(args.build, args.build // 10, 24), MAX_RECORDS))
        return
    from services.analytics import window_credits as computing
    from services.config import Settings
    from services.db.migrate import upgrade
    from services.db.session import make_engine, make_sessionmaker

    upgrade(url)
    steps: list[float] = []
    compute = computing._compute

    def timed(*a: Any, **k: Any) -> Any:
        began = time.perf_counter()
        try:
            return compute(*a, **k)
        finally:
            steps.append(time.perf_counter() - began)

    computing._compute = timed  # type: ignore[assignment]
    stop, out = mp.Event(), mp.Queue()
    writer = mp.Process(target=stream, args=(url, stop, out))
    writer.start()
    time.sleep(3)
    began = time.perf_counter()
    sessions = make_sessionmaker(make_engine(url))
    computing.other_window_ready(sessions, Settings(database_url=url), args.window,
                                 datetime.now(UTC))  # fmt: skip
    took = time.perf_counter() - began
    time.sleep(2)
    stop.set()
    times, failed = out.get()
    writer.join()
    print(json.dumps({
        "window": args.window, "compute_s": round(took, 1), "steps": len(steps),
        "step_max_s": round(max(steps), 2), "batches": len(times),
        "batch_p50_s": round(statistics.median(times), 2), "batch_max_s": round(max(times), 2),
        "failed": failed,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
