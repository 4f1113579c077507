"""``airlock runbook SYSTEM``: the containment process of one system, from the live objects.

This module only fetches — the AISystem, its ContainmentPolicy, its open
AIIncident — and hands them to :func:`airlock.domain.runbook.render_runbook`,
which decides every word.  A policy that does not exist is what the operator
sees too (the plan is invalid, and the runbook says so); one the caller may
not read is an error, because the runbook would otherwise lie about it.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from typing import Any, TypeVar

from pydantic import ValidationError

from airlock.adapters import kube
from airlock.api.aisystem import AISystem
from airlock.api.incident import AIIncident
from airlock.api.policy import ContainmentPolicy
from airlock.cli import connection
from airlock.cli.connection import DONE, REFUSED, CliError
from airlock.domain.runbook import Output, render_runbook


async def fetch(
    api: kube.KubeClient, namespace: str, name: str
) -> tuple[AISystem, ContainmentPolicy | None, AIIncident | None]:
    """The three objects the runbook is derived from."""
    try:
        body = await api.get(kube.AISYSTEMS, namespace, name)
    except kube.NotFound:
        raise CliError(f"AISystem {name} not found in namespace {namespace} (kubectl get ais -A)") from None
    try:
        system = AISystem.model_validate(body)
    except ValidationError as exc:
        raise CliError(f"AISystem {name} is malformed: {exc.errors()[0]['msg']}") from None
    policy: ContainmentPolicy | None = None
    if system.spec.policy_ref is not None:
        try:
            found = await api.get_or_none(kube.POLICIES, None, system.spec.policy_ref.name)
        except kube.ApiError as exc:
            raise CliError(f"cannot read ContainmentPolicy {system.spec.policy_ref.name}: {exc.message}") from None
        policy = _parse(ContainmentPolicy, found)
    incident: AIIncident | None = None
    if system.status is not None and system.status.incident:
        found = await api.get_or_none(kube.AIINCIDENTS, namespace, system.status.incident)
        incident = _parse(AIIncident, found)
    return system, policy, incident


_Model = TypeVar("_Model", ContainmentPolicy, AIIncident)


def _parse(model: type[_Model], body: dict[str, Any] | None) -> _Model | None:
    if body is None:
        return None
    try:
        return model.model_validate(body)
    except ValidationError:
        return None


async def _main(args: argparse.Namespace) -> str:
    config, namespace = connection.load(args)
    async with connection.client(config) as api:
        system, policy, incident = await fetch(api, namespace, args.system)
    return render_runbook(system, policy, incident, args.output)


def run(args: argparse.Namespace) -> int:
    try:
        text = asyncio.run(_main(args))
    except CliError as exc:
        print(f"airlock runbook: {exc}", file=sys.stderr)
        return exc.code
    except kube.ApiError as exc:
        said = f"cannot reach the API server: {exc.message}" if exc.status == 0 else f"the API server said {exc}"
        print(f"airlock runbook: {said}", file=sys.stderr)
        return REFUSED
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")  # a description in UTF-8 must not kill the runbook under LANG=C
    sys.stdout.write(text)
    return DONE


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "runbook",
        help="the step-by-step containment process of an AISystem, from the live objects",
        description=(
            "Print what to do if SYSTEM misbehaves right now: its state and open incident, the exact commands, "
            "who may act, what airlock does by itself at each severity, the fallback and the reporting clocks."
        ),
    )
    parser.add_argument("system", metavar="SYSTEM", help="AISystem name")
    connection.add_cluster_arguments(parser)
    parser.add_argument(
        "-o",
        "--output",
        choices=[o.value for o in Output],
        default=Output.TEXT.value,
        help="text (one terminal screen, default) or markdown (a wiki page)",
    )
    parser.set_defaults(func=run)
