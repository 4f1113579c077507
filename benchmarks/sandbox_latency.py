"""The sandbox API server's per-request latency over a long run (issue 14: it must not be the bottleneck).

A steady load like the operator's — merge-patch an AISystem's status, post an
Event, get a Deployment — at ``--rate`` requests per second for ``--duration``
seconds, from a client in this process; latency is measured per request and
summarised per ``--bucket`` seconds.  The figure is flat when a request costs
the same at minute 10 as at minute 1.

``--mode after`` is the sandbox as shipped (recent requests only, kmock's
dispatcher skipped when no test reaction is set); ``--mode before`` puts back
what it did before: every request kept, and each one dispatched by kmock, which
finds the request among all recorded ones by scanning them.

    python benchmarks/sandbox_latency.py [--duration 600] [--rate 100] [--mode after|before] [--svg FILE] > run.json
    python benchmarks/sandbox_latency.py --plot after.json before.json --svg benchmarks/sandbox_latency.svg
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from airlock.sandbox.cluster import ClusterThread, SandboxCluster
from airlock.sandbox.world import Api, deployment, load_crds

SYSTEMS = 200
NAMESPACE = "bench"


def _system(n: int) -> dict[str, Any]:
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "AISystem",
        "metadata": {"name": f"bot{n}", "namespace": NAMESPACE},
        "spec": {
            "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"bot{n}"},
            "monitors": [],
        },
    }


async def _load(url: str, rate: float, duration: float) -> list[tuple[float, float]]:
    """(seconds since start, latency) of every request sent."""
    samples: list[tuple[float, float]] = []
    interval = 1.0 / rate
    started = time.monotonic()
    n = 0
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer user:bench"}) as session:

        async def one(k: int) -> None:
            system = k % SYSTEMS
            kind = k % 3
            sent = time.monotonic()
            if kind == 0:
                path = f"/apis/airlock.dev/v1alpha1/namespaces/{NAMESPACE}/aisystems/bot{system}/status"
                body = {"status": {"phase": "Healthy", "observedGeneration": k}}
                request = session.patch(
                    url + path, data=json.dumps(body), headers={"Content-Type": "application/merge-patch+json"}
                )
            elif kind == 1:
                event = {
                    "metadata": {"name": f"bot{system}.{k}", "namespace": NAMESPACE},
                    "involvedObject": {"kind": "AISystem", "name": f"bot{system}", "namespace": NAMESPACE},
                    "reason": "Bench",
                    "message": "load",
                    "type": "Normal",
                }
                request = session.post(
                    url + f"/api/v1/namespaces/{NAMESPACE}/events",
                    data=json.dumps(event),
                    headers={"Content-Type": "application/json"},
                )
            else:
                request = session.get(url + f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/bot{system}")
            async with request as response:
                await response.read()
                if response.status >= 400:
                    raise RuntimeError(f"{response.status} {await response.text()}")
            samples.append((sent - started, time.monotonic() - sent))

        pending: set[asyncio.Task[None]] = set()
        while (elapsed := time.monotonic() - started) < duration:
            task = asyncio.create_task(one(n))
            pending.add(task)
            task.add_done_callback(pending.discard)
            n += 1
            await asyncio.sleep(max(0.0, (n * interval) - (time.monotonic() - started)))
            del elapsed
        await asyncio.gather(*pending)
    return samples


def _buckets(samples: list[tuple[float, float]], width: float) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    end = max(t for t, _ in samples)
    start = 0.0
    while start <= end:
        latencies = sorted(lat for t, lat in samples if start <= t < start + width)
        if latencies:
            rows.append(
                {
                    "from_s": round(start),
                    "requests": len(latencies),
                    "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
                    "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
                    "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 2),
                }
            )
        start += width
    return rows


def _svg(runs: dict[str, list[dict[str, Any]]], title: str) -> str:
    """p50 and p95 per bucket of one or more runs, on a log scale, without a plotting library."""
    width, height, pad = 720, 320, 56
    values = [r[k] for rows in runs.values() for r in rows for k in ("p50_ms", "p95_ms")]
    low, high = math.log10(max(min(values), 0.1)), math.log10(max(values) * 1.2)
    last = max(r["from_s"] for rows in runs.values() for r in rows) or 1
    colours = {"after": "#1f77b4", "before": "#d62728"}

    def point(r: dict[str, Any], key: str) -> str:
        x = pad + (width - 2 * pad) * r["from_s"] / last
        y = height - pad - (height - 2 * pad) * (math.log10(max(r[key], 0.1)) - low) / (high - low)
        return f"{x:.1f},{y:.1f}"

    lines = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{pad}" y="20">{title}</text>',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>',
        f'<text x="{pad - 4}" y="{pad + 4}" text-anchor="end">{10**high:.0f} ms</text>',
        f'<text x="{pad - 4}" y="{height - pad + 4}" text-anchor="end">{10**low:.1f} ms</text>',
        f'<text x="{width - pad}" y="{height - pad + 18}" text-anchor="end">{last} s into the run (log scale)</text>',
    ]
    label_y = pad
    for name, rows in runs.items():
        colour = colours.get(name, "#2ca02c")
        for key, dash in (("p50_ms", ""), ("p95_ms", ' stroke-dasharray="5,4"')):
            points = " ".join(point(r, key) for r in rows)
            lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{points}"/>')
            lines.append(
                f'<text x="{width - pad}" y="{label_y}" text-anchor="end" fill="{colour}">{name} {key[:3]}</text>'
            )
            label_y += 16
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


def _plot(paths: list[Path], out: Path) -> None:
    runs: dict[str, list[dict[str, Any]]] = {}
    for path in paths:
        text = path.read_text()
        result = json.loads(text[text.index("{") : text.rindex("}") + 1])
        runs[result["mode"]] = result["buckets"]
    out.write_text(_svg(runs, "sandbox API server: per-request latency over a 10-minute run (100 req/s)"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--bucket", type=float, default=60.0, help="seconds per summary row")
    parser.add_argument("--mode", choices=["after", "before"], default="after")
    parser.add_argument("--svg", type=Path, default=None, help="write the figure here")
    parser.add_argument("--plot", type=Path, nargs="+", default=None, help="draw these runs' output into --svg")
    args = parser.parse_args(argv)
    if args.plot:
        _plot(args.plot, args.svg or Path("sandbox_latency.svg"))
        return 0
    cluster = SandboxCluster(max_requests=None) if args.mode == "before" else SandboxCluster()
    if args.mode == "before":
        cluster._own_fallback = None  # the dispatcher is skipped only for the sandbox's own fallback
    with ClusterThread(cluster) as thread:
        api = Api(thread.url)
        load_crds(api)
        for n in range(SYSTEMS):
            api.create(deployment(NAMESPACE, f"bot{n}", f"bot{n}"))
            api.create(_system(n))
        samples = asyncio.run(_load(thread.url, args.rate, args.duration))
        kept = thread.call(lambda: len(cluster.audit()))
    rows = _buckets(samples, args.bucket)
    first, last = rows[0], rows[-1]
    result = {
        "mode": args.mode,
        "rate_per_second": args.rate,
        "duration_seconds": args.duration,
        "requests": len(samples),
        "requests_kept": kept,
        "buckets": rows,
        "p50_growth_first_to_last": round(last["p50_ms"] / first["p50_ms"], 2) if first["p50_ms"] else None,
        "p95_growth_first_to_last": round(last["p95_ms"] / first["p95_ms"], 2) if first["p95_ms"] else None,
    }
    print(json.dumps(result, indent=2))
    if args.svg is not None:
        args.svg.write_text(_svg({args.mode: rows}, f"sandbox per-request latency ({args.mode}), {args.rate:g} req/s"))
    # The median, not the tail: on a shared machine p95 follows the neighbours' load, p50 follows the server.
    flat = result["p50_growth_first_to_last"] is not None and result["p50_growth_first_to_last"] <= 1.25
    print("PASS: flat" if flat else "FAIL: latency grows over the run", file=sys.stderr)
    return 0 if flat or args.mode == "before" else 1


if __name__ == "__main__":
    sys.exit(main())
