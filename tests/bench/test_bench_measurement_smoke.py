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
