"""``airlock backtest`` arguments and manifests, without Prometheus."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import yaml

from airlock.cli import backtest as cli
from airlock.cli.connection import CliError
from airlock.cli.main import build_parser
from airlock.domain import backtest
from tests.domain.builders import T0, spec_dict


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", T0),
        ("-7d", T0 - datetime.timedelta(days=7)),
        ("now-1h30m", T0 - datetime.timedelta(minutes=90)),
        ("2026-11-24T09:00:00Z", datetime.datetime(2026, 11, 24, 9, tzinfo=datetime.UTC)),
        ("2026-11-24T09:00:00", datetime.datetime(2026, 11, 24, 9, tzinfo=datetime.UTC)),
    ],
)
def test_times_are_rfc3339_or_relative(text: str, expected: datetime.datetime) -> None:
    assert cli.parse_time(text, T0) == expected


@pytest.mark.parametrize(
    "text", ["2026-11-26T17:03:57.5Z", "2026-11-26T17:03:57.999999+00:00", "2026-11-26T18:03:57.25+01:00"]
)
def test_times_are_cut_to_whole_seconds(text: str) -> None:
    # An RFC 3339 time copied from a status field may carry a fraction; the replay steps are whole seconds.
    assert cli.parse_time(text, T0) == datetime.datetime(2026, 11, 26, 17, 3, 57, tzinfo=datetime.UTC)
    assert cli.parse_time("-1500ms", T0 + datetime.timedelta(seconds=0.25)) == T0 - datetime.timedelta(seconds=2)


def test_help_says_times_are_cut_to_whole_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["backtest", "--help"])
    assert " ".join(capsys.readouterr().out.split()).count("cut to whole seconds") == 2


def test_the_table_warns_about_points_that_could_not_be_placed() -> None:
    grid = backtest.Grid.between(T0, T0 + datetime.timedelta(minutes=10), 30)
    report = {"from": "a", "to": "b", "step": "30s", "queries": 1, "release": "all-clear", "flapWindow": "30m"}
    clean = backtest.Result(namespace="ml-prod", name="bot", grid=grid, release=backtest.Release.ALL_CLEAR)
    lossy = backtest.Result(namespace="ml-prod", name="bot", grid=grid, release=backtest.Release.ALL_CLEAR, dropped=7)
    assert "warning" not in cli.render_table([clean], report)
    assert "warning: 7 points could not be placed on the 30s grid" in cli.render_table([lossy], report)


def test_a_bad_time_says_which_forms_work() -> None:
    with pytest.raises(CliError, match="RFC 3339"):
        cli.parse_time("last tuesday", T0)


def test_relative_times_parse_as_values_not_options() -> None:
    args = build_parser().parse_args(["backtest", "-f", "a.yaml", "--from", "-7d", "--to", "-1h30m"])
    assert (args.start, args.end, args.output, args.release) == ("-7d", "-1h30m", "table", "all-clear")


def _write(path: Path, *docs: dict[str, object]) -> str:
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def test_a_policy_named_but_not_given_is_a_clear_error(tmp_path: Path) -> None:
    spec = spec_dict(policyRef={"name": "llm-chatbot"})
    system = {"kind": "AISystem", "metadata": {"name": "bot", "namespace": "ml"}, "spec": spec}
    with pytest.raises(CliError, match=r"llm-chatbot.*--policy"):
        cli.load_plans([_write(tmp_path / "a.yaml", system)], [])


def test_policies_merge_into_the_plan(tmp_path: Path) -> None:
    spec = spec_dict(monitors=[], policyRef={"name": "llm-chatbot"})
    policy_spec = {"monitors": spec_dict()["monitors"], "severities": spec_dict()["severities"]}
    policy = {"kind": "ContainmentPolicy", "metadata": {"name": "llm-chatbot"}, "spec": policy_spec}
    system = {"kind": "AISystem", "metadata": {"name": "bot", "namespace": "ml"}, "spec": spec}
    ((loaded, plan),) = cli.load_plans([_write(tmp_path / "a.yaml", system)], [_write(tmp_path / "p.yaml", policy)])
    assert loaded.metadata.name == "bot"
    assert [m.name for m in plan.monitors] == ["pii-leak", "answer-quality-drift"]
    assert 'namespace="ml"' in plan.monitors[0].query
