"""``winwin report`` is meant to be shared: counts of 1 to 10 people never show."""

from __future__ import annotations

import csv
import io
import json

import pytest

from services.analytics import sharing
from services.config import Settings
from tests.integration.analytics.test_reports import (
    STAGES_ARGS,
    network,  # noqa: F401 (a fixture)
    png_size,
    report,
)
from tests.integration.analytics.test_reports import settings as exact_settings  # noqa: F401

pytestmark = pytest.mark.usefixtures("network")


@pytest.fixture
def settings(exact_settings: Settings) -> Settings:  # noqa: F811
    return exact_settings.model_copy(update={"min_cell": 11})


def test_stages_csv_shows_small_counts_as_less_than_eleven(settings, capsys):
    out = report(settings, [*STAGES_ARGS, "--format", "csv"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows == [
        {"period": "2017-08", "aware": "<11", "use": "<11", "produce": "0"},
        {"period": "2017-09", "aware": "<11", "use": "<11", "produce": "<11"},
        {"period": "2017-10", "aware": "0", "use": "0", "produce": "0"},
    ]


def test_stages_json_withholds_counts_growth_and_medians(settings, capsys):
    out = json.loads(report(settings, [*STAGES_ARGS, "--format", "json"], capsys))
    assert out["rows"][1] == {"period": "2017-09", "aware": None, "use": None,
                              "produce": None, "suppressed": ["aware", "use", "produce"]}  # fmt: skip
    assert out["rows"][2] == {"period": "2017-10", "aware": 0, "use": 0, "produce": 0}
    assert out["growth"] == {"aware": None, "use": None, "produce": None}
    assert out["median"]["aware"] is None
    assert out["disclosure"] == {"exact": False, "min_cell": 11}
    assert "2" not in json.dumps(out["rows"]).replace("2017", "")
    for chart in out["p_charts"].values():  # a p-chart point shows counts and limits
        withheld = chart["points"][1]
        assert withheld["suppressed"] is True
        assert [withheld[k] for k in ("numerator", "denominator", "p", "lower", "upper")] == [
            None
        ] * 5


def test_stages_table_and_png_withhold_too(settings, capsys, tmp_path):
    lines = report(settings, STAGES_ARGS, capsys).splitlines()
    sep = next(line for line in lines if line.startswith("2017-09"))
    assert sep.split() == ["2017-09", "<11", "<11", "<11"]
    median = next(line for line in lines if line.startswith("median"))
    assert median.split()[1:] == ["suppressed"] * 3
    chart = tmp_path / "chart.png"
    report(settings, [*STAGES_ARGS, "--format", "png", "--out", str(chart)])
    assert png_size(chart) == (1920, 1080)


def test_attribution_csv_and_png_withhold_small_cells(settings, capsys, tmp_path):
    out = report(settings, ["report", "attribution", "--format", "csv"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows and all(r["people"] == "<11" and r["events"] == "<11" for r in rows)
    assert all(r["credited"] == "<11" for r in rows)
    chart = tmp_path / "attribution.png"
    report(settings, ["report", "attribution", "--format", "png", "--out", str(chart)])
    assert png_size(chart)[0] == 1920


def test_only_admins_and_staff_see_exact_counts():
    assert sharing.exact_for("admin") and sharing.exact_for("staff")
    assert not sharing.exact_for("analyst") and not sharing.exact_for("")


def test_leaderboard_and_live_counters_withhold_small_counts_with_a_partner():
    board = [{"messenger_id": "m1", "name": "A", "role": "", "credited": 40.0,
              "aware": 50, "use": 30, "produce": 5},
             {"messenger_id": "m2", "name": "B", "role": "", "credited": 90.0,
              "aware": 80, "use": 60, "produce": 20}]  # fmt: skip
    shared = sharing.leaderboard(board, 11)
    assert shared[0]["produce"] is None and shared[0]["credited"] is None
    assert shared[1]["produce"] is None  # the column total would give it away otherwise
    snap = {"at": "x", "today": {"period": "d", "aware": 3, "use": 0, "produce": 0},
            "month": {"period": "m", "aware": 40, "use": 20, "produce": 12},
            "range": {"from": "a", "to": "b", "aware": 400, "use": 200, "produce": 120}}  # fmt: skip
    live = sharing.counters(snap, 11)
    assert live["today"]["suppressed"] == ["aware"] and live["month"]["aware"] is None
    assert live["disclosure"] == {"exact": False, "min_cell": 11}
