"""``winwin report``: every format renders the API's numbers; bad input is a UsageError."""

from __future__ import annotations

import csv
import io
import json
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.analytics import metrics
from services.analytics.reports import run_report
from services.analytics.sink import AttributionSink
from services.cli import build_parser
from services.config import Settings
from services.errors import UsageError
from tests.integration.analytics.conftest import event, person, touch

AUG = datetime(2017, 8, 14, 10, tzinfo=UTC)
STAGES_ARGS = ["report", "stages", "--from", "2017-08", "--to", "2017-10"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        secret_key="s" * 32,
        api_token="t" * 32,
        state_dir=tmp_path / "state",
        attribution_window_days=30,
        timezone="UTC",
        min_cell=0,  # these tests read exact small counts; test_report_sharing withholds them
    )


@pytest.fixture
def network(sessions) -> None:
    """Aug: 2 aware, 1 using. Sep: 4 aware, 3 using, 2 producing. Oct: nobody."""
    sep = AUG.replace(month=9, day=3)
    AttributionSink(sessions).write(
        [
            event("a1", "email.open", AUG, person(1)),
            event("a2", "resource.view", AUG.replace(day=20), person(2)),
            event("s1", "story.shared", sep, person(1)),
            event("s2", "resource.submitted", sep.replace(day=5), person(2)),
            event("s3", "resource.use", sep.replace(day=6), person(3)),
            event("s4", "link.click", sep.replace(day=7), person(4), campaign="c2"),
            event("s5", "email.open", sep.replace(day=8), person(4)),
        ],
        [
            touch("t1", AUG.replace(day=12), person(1), "c1"),
            touch("t2", sep.replace(day=1), person(2), "c1"),
            touch("t3", AUG.replace(day=25), person(3), "c3"),
        ],
    )


def report(settings: Settings, argv: list[str], capsys=None) -> str:
    """Run the report as the CLI would; the text it printed (when captured)."""
    assert run_report(settings, build_parser().parse_args(argv)) == 0
    return capsys.readouterr().out if capsys else ""


def stage_metrics(sessions) -> dict:
    with sessions() as session:
        return metrics.stage_metrics(session, "month", "2017-08", "2017-10")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    length, chunk = struct.unpack(">I4s", data[8:16])
    assert (length, chunk) == (13, b"IHDR")  # the first chunk says the size
    return struct.unpack(">II", data[16:24])


# -- stages ---------------------------------------------------------------------------


def test_stages_csv_is_the_metrics_rows(settings, sessions, network, capsys):
    out = report(settings, [*STAGES_ARGS, "--format", "csv"], capsys)
    parsed = list(csv.DictReader(io.StringIO(out)))
    assert out.splitlines()[0] == "period,aware,use,produce"
    expected = [{k: str(v) for k, v in row.items()} for row in stage_metrics(sessions)["rows"]]
    assert parsed == expected
    assert parsed[:2] == [
        {"period": "2017-08", "aware": "2", "use": "1", "produce": "0"},
        {"period": "2017-09", "aware": "4", "use": "3", "produce": "2"},
    ]


def test_stages_json_is_the_api_answer(settings, sessions, network, capsys):
    out = report(settings, [*STAGES_ARGS, "--format", "json"], capsys)
    assert json.loads(out) == stage_metrics(sessions)
    assert json.loads(out)["growth"] == {"aware": 0.0, "use": 0.0, "produce": None}


def test_stages_table_shows_counts_growth_median_and_signals(settings, network, capsys):
    out = report(settings, [*STAGES_ARGS, "--baseline", "2017-08"], capsys)
    lines = out.splitlines()
    assert lines[0] == "Unique people per month, 2017-08 to 2017-10 (baseline 2017-08)"
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("2017-")}
    assert rows == {"2017-08": ["2", "1", "0"], "2017-09": ["4", "3", "2"],
                    "2017-10": ["0", "0", "0"]}  # fmt: skip
    growth = next(line for line in lines if line.startswith("growth vs 2017-08"))
    assert growth.split()[-3:] == ["x0.00", "x0.00", "n/a"]
    median = next(line for line in lines if line.startswith("median"))
    assert median.split()[1:] == ["2", "1", "0"]
    assert any("signals" in line for line in lines)
    assert lines[-1].split() == ["produce", "none"]


def test_stages_png_is_a_slide_sized_png(settings, network, tmp_path):
    out = tmp_path / "chart.png"
    report(settings, [*STAGES_ARGS, "--format", "png", "--out", str(out)])
    assert png_size(out) == (1920, 1080)  # 16:9, a slide


def test_out_writes_the_file_and_nothing_to_stdout(settings, network, tmp_path, capsys):
    out = tmp_path / "stages.csv"
    assert report(settings, [*STAGES_ARGS, "--format", "csv", "--out", str(out)], capsys) == ""
    assert out.read_text().splitlines()[2] == "2017-09,4,3,2"


def test_an_empty_database_is_migrated_and_answers_zeros(tmp_path, settings, capsys):
    fresh = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'new.db'}"})
    out = report(fresh, [*STAGES_ARGS, "--format", "json"], capsys)
    assert [r["aware"] for r in json.loads(out)["rows"]] == [0, 0, 0]
    chart = tmp_path / "empty.png"
    report(fresh, [*STAGES_ARGS, "--format", "png", "--out", str(chart)])
    assert png_size(chart) == (1920, 1080)


# -- attribution ----------------------------------------------------------------------


def test_attribution_formats_carry_the_metrics(settings, sessions, network, capsys):
    with sessions() as session:
        expected = metrics.attribution(session, "last_touch", 30, group_by="campaign")
    assert {r["key"] for r in expected["rows"]} == {"c1", "c2", "c3", "unattributed"}
    out = report(settings, ["report", "attribution", "--format", "json"], capsys)
    assert json.loads(out) == expected

    out = report(settings, ["report", "attribution", "--format", "csv"], capsys)
    parsed = list(csv.DictReader(io.StringIO(out)))
    assert out.splitlines()[0] == "key,stage,credited,people,events"
    assert [(r["key"], r["stage"], float(r["credited"]), int(r["people"]), int(r["events"]))
            for r in parsed] == [(r["key"], r["stage"], r["credited"], r["people"], r["events"])
                                 for r in expected["rows"]]  # fmt: skip

    out = report(settings, ["report", "attribution"], capsys)
    assert "last_touch model, 30-day window" in out
    table = [line.split() for line in out.splitlines() if line.startswith(("c1 ", "c3 "))]
    assert ["c1", "produce", "2", "2", "2"] in table
    assert ["c3", "use", "1", "1", "1"] in table


def test_attribution_csv_neutralises_formulas_in_keys(settings, sessions, capsys):
    """A messenger id that a spreadsheet would run (OWASP CSV injection) is written as text."""
    hostile = "+cmd|' /C calc'!A0"
    at = AUG.replace(day=2)
    mark = touch("t1", at, person(1), "c3") | {"messenger_id": hostile}
    AttributionSink(sessions).write([event("e1", "resource.view", AUG, person(1))], [mark])
    argv = ["report", "attribution", "--group-by", "messenger", "--format", "csv"]
    parsed = list(csv.DictReader(io.StringIO(report(settings, argv, capsys))))
    assert [r["key"] for r in parsed] == ["'" + hostile]
    assert float(parsed[0]["credited"]) == 1.0


def test_another_window_is_recomputed_before_answering(settings, sessions, network, capsys):
    argv = ["report", "attribution", "--window-days", "7", "--group-by", "channel", "--format", "json"]  # fmt: skip
    answer = json.loads(report(settings, argv, capsys))
    assert answer["window_days"] == 7
    with sessions() as session:
        assert answer == metrics.attribution(session, "last_touch", 7, group_by="channel")
    # person 3's use on Sep 6 is 12 days after their only touch: credited at 30, not at 7
    keys = {(r["key"], r["stage"]) for r in answer["rows"]}
    assert ("toolkit", "use") not in keys
    assert ("unattributed", "use") in keys


def test_campaign_attribution_is_per_month(settings, sessions, network, capsys):
    argv = ["report", "attribution", "--campaign", "c1", "--model", "linear", "--format", "json"]
    answer = json.loads(report(settings, argv, capsys))
    with sessions() as session:
        assert answer == metrics.campaign_attribution(session, "c1", "linear", 30)
    assert {(r["period"], r["stage"]) for r in answer} >= {
        ("2017-08", "aware"),
        ("2017-09", "produce"),
    }
    out = report(settings, argv[:-2] + ["--format", "csv"], capsys)
    assert out.splitlines()[0] == "period,stage,credited,people,events"


def test_attribution_png(settings, network, tmp_path):
    out = tmp_path / "attribution.png"
    report(settings, ["report", "attribution", "--format", "png", "--out", str(out)])
    width, height = png_size(out)
    assert width >= 1600 and height >= 900


# -- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["report", "stages", "--from", "2017-13", "--to", "2018-01"], "--from"),
        (["report", "stages", "--from", "Aug 2017", "--to", "2018-01"], "--from"),
        (["report", "stages", "--from", "2017-08", "--to", "2017-02"], "--to"),
        ([*STAGES_ARGS, "--baseline", "2017-8"], "--baseline"),
        (["report", "attribution", "--window-days", "0"], "--window-days"),
    ],
)
def test_bad_input_is_a_usage_error_naming_the_option(settings, argv, option):
    with pytest.raises(UsageError) as raised:
        run_report(settings, build_parser().parse_args(argv))
    message = str(raised.value)
    assert option in message and "\n" not in message


@pytest.mark.parametrize("command", [STAGES_ARGS, ["report", "attribution"]])
def test_png_needs_out(settings, command, capsys):
    with pytest.raises(UsageError, match="--out"):
        run_report(settings, build_parser().parse_args([*command, "--format", "png"]))
    assert capsys.readouterr().out == ""
