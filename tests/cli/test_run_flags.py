"""``airlock run`` refuses unsafe leader-election and shard settings before it starts (exit 2, the flag named)."""

from __future__ import annotations

import argparse

import pytest

from airlock.cli import run as run_cli
from airlock.domain.sharding import Shard


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    run_cli.register(parser.add_subparsers())
    return parser.parse_args(["run", "--prometheus-url", "http://prometheus:9090", *argv])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--leader-elect", "--lease-duration", "3", "--renew-deadline", "3"], "--renew-deadline (3s) must be shorter"),
        (["--leader-elect", "--lease-duration", "4.5"], "--lease-duration must be whole seconds"),
        (["--leader-elect", "--renew-deadline", "1", "--retry-period", "1"], "longer than 1.2 × --retry-period"),
        (["--shard", "1/2"], "--shard needs --leader-elect"),
        (["--leader-elect", "--shard", "1/2", "--namespace", "ml-prod"], "does not go with --namespace"),
    ],
)
def test_unsafe_settings_are_refused_before_starting(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli.run(parse(*argv)) == 2
    assert message in capsys.readouterr().out


def test_durations_read_as_seconds_or_with_a_unit() -> None:
    args = parse("--leader-elect", "--lease-duration", "4s", "--renew-deadline", "3", "--retry-period", "500ms")
    assert (args.lease_duration, args.renew_deadline, args.retry_period) == (4.0, 3.0, 0.5)


def test_a_bad_shard_is_an_argument_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--shard", "2/2")
    assert "shards are numbered 0 to 1" in capsys.readouterr().err
    assert parse("--shard", "1/3").shard == Shard(1, 3)


def test_the_identity_is_unique_per_process() -> None:
    args = parse("--identity", "airlock-7c9d")
    first, second = run_cli._identity(args), run_cli._identity(args)
    assert first.startswith("airlock-7c9d_")
    assert first != second
