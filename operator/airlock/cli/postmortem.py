"""``airlock postmortem INCIDENT``: print (or write) the AI-specific post-mortem draft of an incident.

The operator drafts the post-mortem when an incident is resolved and keeps it
in an immutable ConfigMap named by its content (``<incident>-postmortem-<hash>``,
key ``postmortem.md``, named in the incident's ``status.drafts.postmortem``) in
the incident's namespace; this verb only fetches it.  When there is no draft yet,
it says why — the incident is still open, or the operator has not written it
— and exits 1, so a script never mistakes an empty page for a post-mortem.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from pathlib import Path
from typing import Any

from airlock.adapters import kube
from airlock.api.incident import AIIncident, IncidentPhase
from airlock.cli import connection
from airlock.cli.connection import DONE, REFUSED, CliError
from airlock.domain import drafts, postmortem


def _phase(incident: dict[str, Any]) -> str:
    return str((incident.get("status") or {}).get("phase") or IncidentPhase.OPEN.value)


def _config_map(incident: dict[str, Any]) -> str:
    try:
        return drafts.current(AIIncident.model_validate(incident), drafts.POSTMORTEM)
    except ValueError:  # not an incident this version can read: the name older operators used
        return drafts.legacy_name(str((incident.get("metadata") or {}).get("name") or ""), drafts.POSTMORTEM)


def _missing(name: str, namespace: str, incident: dict[str, Any]) -> str:
    """Why there is no draft to show, in one line."""
    phase = _phase(incident)
    config_map = _config_map(incident)
    if phase in (IncidentPhase.OPEN.value, IncidentPhase.CONTAINED.value):
        return (
            f"incident {name} is {phase}: the post-mortem is drafted when it is resolved "
            f"(ConfigMap {config_map} in namespace {namespace})"
        )
    record = (incident.get("status") or {}).get("postmortem") or {}
    done = f"; the post-mortem is recorded as complete: {record['ref']}" if record.get("ref") else ""
    return (
        f"incident {name} is {phase} but its post-mortem draft, ConfigMap {config_map} in namespace {namespace}, "
        f"does not exist (the operator writes it shortly after resolution; is the operator running?){done}"
    )


async def fetch(api: kube.KubeClient, namespace: str, name: str) -> str:
    """The stored draft of incident ``name``; :class:`CliError` if the incident or its draft is missing."""
    try:
        incident = await api.get(kube.AIINCIDENTS, namespace, name)
    except kube.NotFound:
        raise CliError(
            f"AIIncident {name} not found in namespace {namespace} (kubectl get aii -n {namespace})"
        ) from None
    where = _config_map(incident)
    config_map = await api.get_or_none(kube.CONFIGMAPS, namespace, where)
    if config_map is None:
        raise CliError(_missing(name, namespace, incident))
    text = (config_map.get("data") or {}).get(postmortem.CONFIG_MAP_KEY)
    if not isinstance(text, str) or not text.strip():
        raise CliError(
            f"ConfigMap {where} in namespace {namespace} has no "
            f"{postmortem.CONFIG_MAP_KEY}: the draft is missing or empty"
        )
    return text


async def _main(args: argparse.Namespace) -> str:
    config, namespace = connection.load(args)
    async with connection.client(config) as api:
        return await fetch(api, namespace, args.incident)


def run(args: argparse.Namespace) -> int:
    try:
        text = asyncio.run(_main(args))
    except CliError as exc:
        print(f"airlock postmortem: {exc}", file=sys.stderr)
        return exc.code
    except kube.ApiError as exc:
        said = f"cannot reach the API server: {exc.message}" if exc.status == 0 else f"the API server said {exc}"
        print(f"airlock postmortem: {said}", file=sys.stderr)
        return REFUSED
    if not text.endswith("\n"):
        text += "\n"
    open_questions = postmortem.unanswered(text)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"airlock postmortem: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return REFUSED
        print(
            f"airlock postmortem: wrote {args.output}; {len(open_questions)} of {len(postmortem.QUESTIONS)} "
            "AI-specific questions still to answer",
            file=sys.stderr,
        )
        return DONE
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")  # UTF-8 in a message must not kill the output under LANG=C
    sys.stdout.write(text)
    return DONE


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "postmortem",
        help="print the AI-specific post-mortem draft of a resolved incident",
        description=(
            "Print the post-mortem draft airlock wrote when INCIDENT was resolved (the ConfigMap its "
            f"status.drafts.postmortem names, key {postmortem.CONFIG_MAP_KEY}): what airlock saw and did, "
            "and the AI-specific questions for people to answer. Exits 1 if there is no draft yet."
        ),
    )
    parser.add_argument("incident", metavar="INCIDENT", help="AIIncident name")
    connection.add_cluster_arguments(parser)
    parser.add_argument("-o", "--output", metavar="FILE", default=None, help="write the draft to FILE, not stdout")
    parser.set_defaults(func=run)
