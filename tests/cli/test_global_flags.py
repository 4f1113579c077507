"""The cluster flags work before the verb as well as after it (``airlock --kubeconfig X shutdown …``)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from airlock.cli import main as cli_main

GLOBALS = ["--kubeconfig", "/k/config", "--context", "prod", "-n", "ml-prod", "--as", "alice", "--as-group", "oncall"]
# Every verb that talks to a cluster, with the arguments it needs besides the cluster flags.
VERBS = {
    "shutdown": ["shutdown", "chatbot", "--reason", "leak"],
    "release": ["release", "chatbot"],
    "ack": ["ack", "chatbot-1"],
    "approve": ["approve", "chatbot-1"],
    "runbook": ["runbook", "chatbot"],
    "postmortem": ["postmortem", "chatbot-1"],
    "incident show": ["incident", "show", "chatbot-1"],
    "incident list": ["incident", "list"],
    "drill": ["drill", "chatbot", "--scenario", "privacy"],
}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = cli_main.build_parser()
    args = parser.parse_args(argv)
    assert cli_main.connection.apply_global_arguments(args) is None
    return args


@pytest.mark.parametrize("verb", VERBS)
def test_cluster_flags_before_the_verb_mean_the_same_as_after_it(verb: str) -> None:
    after = parse([*VERBS[verb], *GLOBALS])
    before = parse([*GLOBALS, *VERBS[verb]])
    # Each parse builds its own verb functions: compare everything else.
    assert {k: v for k, v in vars(before).items() if k != "func"} == {
        k: v for k, v in vars(after).items() if k != "func"
    }
    assert (before.kubeconfig, before.context, before.namespace) == ("/k/config", "prod", "ml-prod")
    assert (before.as_user, before.as_groups) == ("alice", ["oncall"])


def test_the_flag_after_the_verb_wins_and_groups_collect() -> None:
    args = parse(["-n", "a", "--as-group", "g1", "runbook", "chatbot", "-n", "b", "--as-group", "g2"])
    assert args.namespace == "b"
    assert args.as_groups == ["g1", "g2"]


def test_run_takes_kubeconfig_and_namespaces_before_the_verb() -> None:
    args = parse(["--kubeconfig", "/k/config", "-n", "ml-prod", "run", "-n", "ml-staging"])
    assert args.kubeconfig == "/k/config"
    assert args.namespace == ["ml-prod", "ml-staging"]


def test_a_cluster_flag_before_a_verb_without_one_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli_main.main(["--kubeconfig", "/k/config", "crds"])
    assert exited.value.code == 2
    assert "--kubeconfig does not apply to this command (crds)" in capsys.readouterr().err


def test_the_verb_runs_with_the_kubeconfig_given_before_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # What the user sees: the verb runs and reads that kubeconfig (here: it is missing), no usage error.
    missing = tmp_path / "nope.yaml"
    code = cli_main.main(["--kubeconfig", str(missing), "runbook", "chatbot"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"cannot read kubeconfig {missing}" in err
    assert "usage:" not in err
