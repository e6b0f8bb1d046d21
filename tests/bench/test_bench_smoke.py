"""`winwin bench` at tiny sizes: the harness runs end to end and reports sane numbers.

No timing is asserted (timings belong to `winwin bench` on a quiet machine): only that
each bench completes, checks its own exactness, and reports positive figures. The
embedded broker is used unless WINWIN_KAFKA_BOOTSTRAP is set, as in `winwin bench`.
"""

from __future__ import annotations

import json
import math

import pytest

from services.bench import Figure, table, to_json
from services.supervisor import EMBEDDED_FAUST

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _faust_as_winwin_up_sets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The benches' workers get the Faust timeouts `winwin up` gives the embedded broker's
    worker (heartbeat 1 s, session 10 s): a joining or leaving worker rebalances in
    seconds, not after Faust's defaults (3 s heartbeats, 60 s sessions)."""
    for name, value in EMBEDDED_FAUST.items():
        monkeypatch.setenv(name, value)


def _sane(figures: list[Figure]) -> None:
    assert figures
    for f in figures:
        assert math.isfinite(f.value) and f.value > 0, f
        if f.baseline is not None:
            assert f.baseline > 0 and f.ratio is not None and f.ratio > 0
    assert json.loads(json.dumps(to_json(figures)))["figures"][0]["bench"] == figures[0].bench
    assert figures[0].bench in table(figures)


def test_pipeline_bench_counts_every_record_exactly():
    from services.bench.pipeline import bench_pipeline

    figures = bench_pipeline(3000, people=500, peer=False)  # the peer: tests/unit/streams
    _sane(figures)
    assert figures[0].details["exact"] is True
    assert "bare bulk load" in figures[-1].name  # the same rows, loaded again: as many


def test_latency_bench_sees_every_event():
    from services.bench.latency import bench_latency

    figures = bench_latency(rate=200, seconds=1.0)
    _sane(figures)
    assert figures[0].details["visible"] == figures[0].details["events"] == 200


def test_redirect_bench_clicks_reach_sql():
    from services.bench.redirect import bench_redirect

    figures = bench_redirect(peak_seconds=1.0, half_seconds=1.0, warmup_seconds=0.2)
    _sane(figures)
    assert figures[-1].met is True  # every click accepted reached SQL through Kafka


def test_dispatch_bench_delivers_every_recipient():
    from services.bench.dispatch import bench_dispatch

    figures = bench_dispatch(1500)
    _sane(figures)
    assert figures[0].details["delivered"] == figures[0].details["sent"] == 1500


def test_memory_bench_stores_every_person_once():
    from services.bench.memory import bench_memory

    figures = bench_memory(2000)
    _sane(figures)
    details = figures[0].details
    assert details["sql"]["people"] == details["sql"]["events"] == 2000
    assert details["sql"]["touch_rows"] > 200  # every 10th person's touch + exposures
    assert details["rss_mib_peak"] > 0


def test_scaleout_bench_counts_stay_exact_through_joins_and_a_leave():
    from services.bench.scaleout import bench_scaleout

    figures = bench_scaleout(4000, partitions=4)
    exact = figures[-1]
    assert exact.met is True and exact.details["exact"] is True
    assert exact.value == exact.details["events"] > 0
    assert len(figures) == 5  # four phases and the exactness figure
