"""`winwin bench scaleout --workers 1,2,4`: how a run's heartbeat samples become rates.

Pure: no broker, no workers. The run itself (produce, workers, exact counts) shares
its code with the join/leave bench, which tests/bench/test_bench_smoke.py runs end to
end; a Faust worker takes tens of seconds to start on a loaded 2-core machine, so a run
per group size stays out of the suite (README, "Scale-out by group size").
"""

from __future__ import annotations

from services.bench.scaleout import Phase
from services.bench.scaleout_workers import group_rates, growth_figures
from services.bench.workload import Workload

NAMES = {"101": "w1", "102": "w2"}
WORK = Workload(events=[{}] * 9, touches=[{}])  # 10 records per 9 events


def _phase() -> Phase:
    phase = Phase("2 worker(s) from the start", 0.0, running=list(NAMES))
    phase.samples = [
        (0.0, {}, 0),
        (1.0, {"101": (100, 8)}, 100),  # w2 not in the group yet: w1 alone
        (2.0, {"101": (200, 8), "102": (0, 8)}, 200),  # settled: both hold partitions
        (12.0, {"101": (700, 8), "102": (500, 8)}, 1200),
    ]
    return phase


def test_rates_start_when_every_worker_holds_partitions():
    rates = group_rates(_phase(), NAMES, 4, WORK, settled_at=2)
    assert rates["settled"] is True
    assert (rates["seconds"], rates["events"], rates["events_per_s"]) == (10.0, 1000, 100.0)
    assert rates["records_per_s"] == 100.0 * 10 / 9
    assert rates["events_per_s_per_partition"] == 25
    assert rates["workers"]["w1"] == {
        "events_per_s": 50,
        "engagement_partitions": 2.0,
        "events_per_s_per_partition": 25,
    }
    assert rates["workers"]["w2"]["events_per_s"] == 50


def test_a_backlog_stored_before_the_group_settled_is_timed_from_the_start_and_says_so():
    rates = group_rates(_phase(), NAMES, 4, WORK, settled_at=None)
    assert rates["settled"] is False
    assert (rates["seconds"], rates["events"]) == (12.0, 1200)


def test_each_group_size_is_set_against_one_worker():
    one = {"workers_started": 1, "records_per_s": 900.0, "events_per_s": 810.0,
           "workers": {"w1": {"events_per_s": 810}}, "exact": {"events": 9}}  # fmt: skip
    two = {"workers_started": 2, "records_per_s": 1800.0, "events_per_s": 1620.0,
           "workers": {"w1": {"events_per_s": 900}, "w2": {"events_per_s": 720}},
           "exact": {"events": 9}}  # fmt: skip
    group1, _, group2, each2, exact = growth_figures([one, two], WORK, 4)
    assert group1.ratio == 1.0 and group2.ratio == 2.0
    assert group2.baseline_name == "1 worker"
    assert each2.value == (900 + 720) / 2 * 10 / 9  # records/s per worker, mean
    assert "per partition 450" in each2.name
    assert exact.met is True
    assert growth_figures([one, {**two, "exact": None}], WORK, 4)[-1].met is False
