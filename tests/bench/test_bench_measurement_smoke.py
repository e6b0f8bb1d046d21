"""The measurement benchmark runs end to end at a tiny size and agrees with its oracle.

No timing assertions: the figures belong to the full run (README, "Scale").
"""

from __future__ import annotations

import json

from tests.bench import bench_measurement


def test_the_benchmark_completes_and_matches_the_oracle(database_url, capsys):
    status = bench_measurement.main(
        ["--events", "2000", "--people", "300", "--months", "6", "--calls", "2"]
        + ["--json", "--database-url", database_url]
    )
    result = json.loads(capsys.readouterr().out)
    assert [e["oracle"] for e in result["endpoints"]] == ["OK"] * 17
    assert result["oracle_ok"] and status == 0
    assert result["ingest"]["rows"]["credits"] > 0


def test_winwin_bench_reads_reports_each_read_and_the_oracle_verdict(monkeypatch):
    from services.bench import table
    from services.bench.reads import ReadsRun, bench_reads

    monkeypatch.delenv("WINWIN_DATABASE_URL", raising=False)  # SQLite only: seconds
    figures = bench_reads(ReadsRun(events=1000, people=150, months=4, calls=1))
    names = [f.name for f in figures]
    assert "sqlite: first read of the 7-day window (computes it)" in names
    assert "sqlite: dashboard panels p50" in names and "sqlite: campaign attribution p50" in names
    verdict = figures[-1]
    assert verdict.met is True and verdict.value == 17
    assert all(f.met is None for f in figures[:-1])  # targets judged at 1M events only
    assert "reads" in table(figures)
