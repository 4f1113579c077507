"""``airlock backtest``: what would this plan have done last Tuesday?

This module only reads the manifests, fetches history — one range query per
distinct resolved query, so systems sharing a policy's vector query cost one —
and prints.  Every decision is :func:`airlock.domain.backtest.replay`'s, which
runs the operator's own evaluation and decision functions; its docstring lists
what a replay has to assume (nobody acknowledges; when a release happens).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib
import json
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from airlock.adapters.prometheus import PrometheusProvider, ProviderError
from airlock.api import durations
from airlock.api.aisystem import AISystem
from airlock.api.policy import ContainmentPolicy
from airlock.cli.connection import DONE, USAGE, CliError
from airlock.domain import backtest
from airlock.domain.errors import SpecError
from airlock.domain.plan import Plan, build_plan

# Prometheus refuses range queries of more than 11,000 points per series.
MAX_POINTS = 10_000


def parse_time(text: str, now: datetime.datetime) -> datetime.datetime:
    """RFC 3339, or relative to ``now``: ``now``, ``-7d``, ``now-90m``; truncated to whole seconds.

    The replay's step is whole seconds, so a whole-second ``--from`` puts every step on a
    whole second, where Prometheus keeps its samples and the operator stamps its records
    (a time copied from a status field may carry a fraction: ``…T17:03:57.5Z``).
    """
    return _parse_time(text, now).replace(microsecond=0)


def _parse_time(text: str, now: datetime.datetime) -> datetime.datetime:
    value = text.strip()
    relative = value.removeprefix("now")
    if value == "now":
        return now
    if relative.startswith("-"):
        try:
            return now - datetime.timedelta(seconds=durations.parse_seconds(relative[1:]))
        except durations.DurationError as exc:
            raise CliError(f"bad time {text!r}: {exc}", USAGE) from None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise CliError(
            f"bad time {text!r}: use RFC 3339 (2026-11-24T09:00:00Z), now, or -7d / now-90m", USAGE
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def _documents(paths: Iterable[str]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in paths:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text()
            docs += [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
        except (OSError, yaml.YAMLError) as exc:
            raise CliError(f"cannot read {path}: {exc}", USAGE) from None
    return docs


def load_plans(files: list[str], policy_files: list[str]) -> list[tuple[AISystem, Plan]]:
    """Every AISystem in ``files`` with its plan; ContainmentPolicies come from either list."""
    systems: list[AISystem] = []
    policies: dict[str, ContainmentPolicy] = {}
    try:
        for doc in _documents([*files, *policy_files]):
            if doc.get("kind") == "AISystem":
                systems.append(AISystem.model_validate(doc))
            elif doc.get("kind") == "ContainmentPolicy":
                found = ContainmentPolicy.model_validate(doc)
                policies[found.metadata.name or ""] = found
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise CliError(f"invalid manifest: {where}: {error['msg']}", USAGE) from None
    if not systems:
        raise CliError("no AISystem in " + ", ".join(files), USAGE)
    out: list[tuple[AISystem, Plan]] = []
    for system in systems:
        ref = system.spec.policy_ref
        policy = policies.get(ref.name) if ref else None
        name = system.metadata.name or "unnamed"
        try:
            plan = build_plan(
                system.metadata.namespace or "default", name, system.spec, policy.spec if policy else None
            )
        except SpecError as exc:
            hint = " (pass it with --policy FILE)" if ref and policy is None else ""
            raise CliError(f"AISystem {name}: {exc}{hint}", USAGE) from None
        out.append((system, plan))
    return out


async def fetch(provider: PrometheusProvider, queries: list[str], grid: backtest.Grid) -> backtest.History:
    """One range query per query (split in chunks Prometheus accepts), re-cut into steps."""
    chunks = [(i, min(i + MAX_POINTS, grid.count) - 1) for i in range(0, grid.count, MAX_POINTS)]

    async def one(query: str) -> list[backtest.Series]:
        parts = await asyncio.gather(*(provider.range(query, grid.at(a), grid.at(b), grid.step) for a, b in chunks))
        return [backtest.Series(labels=s.labels, points=s.points) for part in parts for s in part]

    answers = await asyncio.gather(*(one(q) for q in queries))
    return backtest.History(grid, dict(zip(queries, answers, strict=True)))


def render_table(results: list[backtest.Result], report: dict[str, Any]) -> str:
    lines = [
        f"backtest {report['from']} → {report['to']}, step {report['step']}, "
        f"{report['queries']} range queries, release: {report['release']}",
    ]
    for result in results:
        lines += ["", f"{result.namespace}/{result.name}"]
        lines.append(f"  timeline  |{result.timeline()}|")
        lines.append("            . ok  ? no data/error  o observe  4-1 severity (not contained)  # contained")
        if result.dropped:
            lines.append(
                f"  warning: {result.dropped} points could not be placed on the {report['step']} grid "
                "and were dropped (steps without a point read as no data)"
            )
        if not result.incidents:
            lines.append("  no incident would have been opened")
        for number, incident in enumerate(result.incidents, 1):
            severity = incident.severity.value
            if incident.max_severity != incident.severity:
                severity += f"→{incident.max_severity.value}"
            ttc = f"{incident.time_to_contain:g}s" if incident.time_to_contain is not None else "-"
            resolved = _short(incident.resolved_at) if incident.resolved_at else "still open"
            lines.append(
                f"  #{number:<3} {_short(incident.opened_at)}  {severity:<9} "
                f"{incident.response.value if incident.response else '-':<11} "
                f"{','.join(a.value for a in incident.actions) or '-':<24} ttc {ttc:<7} until {resolved}"
            )
            lines.append(
                f"        {incident.monitor or '-'} {incident.condition or ''} (first breach {_short(incident.first_breach)})"
            )
        lines.append(
            f"  {len(result.incidents)} incidents, {result.containments} containments, "
            f"{result.releases} releases, {result.flaps} flaps (re-contained within {report['flapWindow']})"
        )
    return "\n".join(lines) + "\n"


def _short(at: datetime.datetime | None) -> str:
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ") if at else "-"


def _matplotlib() -> Any:
    try:
        return importlib.import_module("matplotlib")
    except ModuleNotFoundError:
        raise CliError("--png needs matplotlib, which is not installed: pip install matplotlib", USAGE) from None


def write_png(results: list[backtest.Result], path: str) -> None:
    """A chart per system: each monitor's value, incidents shaded (matplotlib is not a dependency)."""
    _matplotlib().use("Agg")
    pyplot = importlib.import_module("matplotlib.pyplot")
    figure, axes = pyplot.subplots(len(results), 1, figsize=(12, 3 * len(results)), squeeze=False)
    for ax, result in zip((row[0] for row in axes), results, strict=True):
        times = [result.grid.at(i) for i in range(result.grid.count)]
        for monitor, values in result.values.items():
            ax.plot(times, [float("nan") if v is None else v for v in values], label=monitor)
        for incident in result.incidents:
            ax.axvspan(incident.opened_at, incident.resolved_at or times[-1], alpha=0.2, color="red")
        ax.set_title(f"{result.namespace}/{result.name}")
        ax.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path)


async def _main(args: argparse.Namespace) -> tuple[list[backtest.Result], dict[str, Any]]:
    if args.png:
        _matplotlib()  # fail before minutes of queries, not after
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    start, end = parse_time(args.start, now), parse_time(args.end, now)
    if end <= start:
        raise CliError("--to must be after --from", USAGE)
    if not args.prometheus:
        raise CliError("--prometheus URL is required (or AIRLOCK_PROMETHEUS_URL)", USAGE)
    try:
        flap_window = durations.parse_seconds(args.flap_window)
        step_seconds = durations.parse_seconds(args.step) if args.step else None
    except durations.DurationError as exc:
        raise CliError(str(exc), USAGE) from None
    systems = load_plans(args.filename, args.policy or [])
    plans = [plan for _, plan in systems]
    if step_seconds is None:
        # As often as the live operator would evaluate the most frequent monitor.
        step_seconds = min((r.monitor.interval.seconds for p in plans for r in p.monitors), default=30.0)
    step_seconds = max(1.0, float(round(step_seconds)))
    grid = backtest.Grid.between(start, end, step_seconds)
    queries = backtest.queries(plans)
    provider = PrometheusProvider(args.prometheus, timeout=60.0)
    try:
        history = await fetch(provider, queries, grid)
    except ProviderError as exc:
        raise CliError(str(exc)) from None
    release = backtest.Release(args.release)
    results = [
        backtest.replay(
            plan,
            history,
            namespace=system.metadata.namespace or "default",
            name=system.metadata.name or "unnamed",
            release=release,
            flap_window=flap_window,
        )
        for system, plan in systems
    ]
    report: dict[str, Any] = {
        "from": backtest.iso(grid.start),
        "to": backtest.iso(grid.end),
        "step": durations.format_seconds(grid.step),
        "release": release.value,
        "flapWindow": durations.format_seconds(flap_window),
        "queries": len(queries),
        "assumptions": "nobody acknowledges or approves; dryRun replayed as enforce; see airlock.domain.backtest",
    }
    return results, report


def run(args: argparse.Namespace) -> int:
    try:
        results, report = asyncio.run(_main(args))
        if args.png:
            write_png(results, args.png)
    except CliError as exc:
        print(f"airlock backtest: {exc}", file=sys.stderr)
        return exc.code
    if args.output == "json":
        json.dump({**report, "systems": [r.dump() for r in results]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_table(results, report))
    return DONE


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backtest",
        help="replay the monitors and the matrix over historical data",
        description=(
            "What would this plan have done? Replays every monitor of the AISystems in FILE over "
            "Prometheus history with the operator's own decision code, and prints the incidents it would "
            "have opened, their severities and actions, time to contain and flapping. Assumes nobody "
            "acknowledges escalations; --release says when a containment is assumed released."
        ),
    )
    # `--from -7d` must read -7d as a value, not an unknown option: widen argparse's notion of a
    # negative number (its default only knows -7 and -7.5) to relative durations.
    parser._negative_number_matcher = re.compile(r"^-\d+(\.\d+)?([a-z]+(\d+[a-z]+)*)?$")
    parser.add_argument("-f", "--filename", action="append", required=True, help="AISystem manifest(s); - for stdin")
    parser.add_argument("--policy", action="append", help="ContainmentPolicy manifest(s) the systems refer to")
    parser.add_argument(
        "--prometheus",
        default=os.environ.get("AIRLOCK_PROMETHEUS_URL"),
        help="Prometheus URL (env AIRLOCK_PROMETHEUS_URL)",
    )
    parser.add_argument(
        "--from", dest="start", required=True, help="RFC 3339, or relative: -7d, now-90m (cut to whole seconds)"
    )
    parser.add_argument(
        "--to", dest="end", default="now", help="RFC 3339 or relative (default: now; cut to whole seconds)"
    )
    parser.add_argument("--step", default=None, help="replay step (default: the shortest monitor interval)")
    parser.add_argument(
        "--release",
        choices=[r.value for r in backtest.Release],
        default=backtest.Release.ALL_CLEAR.value,
        help="when a containment is assumed released: all-clear (no monitor breaches, default) or "
        "blockers-clear (the earliest release the operator would accept)",
    )
    parser.add_argument("--flap-window", default="30m", help="re-contained this soon after a release is a flap")
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    parser.add_argument("--png", default=None, metavar="FILE", help="write a timeline chart (needs matplotlib)")
    parser.set_defaults(func=run)
