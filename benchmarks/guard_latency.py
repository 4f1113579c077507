"""airlock guard's added latency and throughput (issue 12 "Numbers"), measured side by side in one run.

Three processes: the guard (``python -m airlock guard``) pinned to CPU 0; a fast OpenAI-compatible
upstream stub (raw asyncio) and the load generator pinned to CPU 1 (the same run also starts a
sandbox API server holding the guard's AISystem, Healthy, idle during the measurement).

* **latency**: an open-loop schedule (requests sent at fixed times, latency counted from the
  scheduled time, so a stall is never hidden) at ``--rate`` req/s to the guard and, interleaved
  half a period apart, at the same rate directly to the upstream; 1 KB non-streamed answers.
  Added latency = the guard's percentile minus the direct percentile. Target: p50 <= 2 ms,
  p99 <= 10 ms at 200 req/s.
* **streaming**: ``--streams`` streamed answers of 64 chunks each, through the guard and directly;
  the upstream stamps each chunk with its send time; added per chunk = arrival through the guard
  minus arrival directly, per percentile. Target: <= 1 ms at p99. (With ``redact`` the text of a
  chunk may be held back while it may begin a finding; the event itself is forwarded at once, and that
  is what is timed.)
* **throughput**: a closed loop of ``--concurrency`` connections to the guard for ``--seconds``,
  then an open loop at ``--throughput-rate`` req/s. Target: >= 1,000 req/s on one core with every
  detector on (pii, cross-customer: redact; canary: block; prompt-injection, refusal: observe).

    python benchmarks/guard_latency.py [--rate 200] [--seconds 20] [--streams 200] [--throughput-rate 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OWN = "jordan.miller@example.com"
ANSWER = (
    "Thanks for getting in touch, Jordan. I checked order #48213 placed on 12 March: it left our warehouse "
    "in Leipzig yesterday at 16:40 and is with the carrier now. Tracking number 1Z 999 AA1 01 2345 6784 "
    "shows it in transit; delivery is expected on Friday between 9:00 and 13:00. We will send the delivery "
    f"notice to {OWN} as usual. If the parcel does not arrive by Saturday, reply to this message and we "
    "will open a trace with the carrier at no cost to you. The invoice for 89.90 EUR (including 14.35 EUR "
    "VAT) is in your account under Orders > Invoices. Version 2.4 of our app also shows live tracking. "
    "Is there anything else I can help you with today? Our support team is available Monday to Saturday "
    "from 8:00 to 20:00, and the self-service portal answers most questions about returns, exchanges and "
    "warranty claims at any time."
)
CHAT = {
    "model": "chatbot",
    "messages": [{"role": "user", "content": f"Hi, this is Jordan Miller ({OWN}). Where is my order 48213?"}],
}
GUARD_CONFIG = {
    "detectors": {
        "pii": "redact",
        "cross-customer": "redact",
        "prompt-injection": "observe",
        "canary": "block",
        "refusal": "observe",
    }
}
STREAM_CHUNKS = 64
STREAM_GAP = 0.002  # seconds between the upstream's chunks


# -- the upstream stub (CPU 1) -----------------------------------------------------------------


def _completion_body() -> bytes:
    body = {
        "id": "cmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "chatbot",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 21, "completion_tokens": 180, "total_tokens": 201},
    }
    return json.dumps(body).encode()


class _Upstream(asyncio.Protocol):
    completion = _completion_body()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport  # asyncio's or uvloop's TCP transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].lower()
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                length = int(head[at + 15 : head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None].strip())
            if len(self.buffer) < head_end + 4 + length:
                return
            body = self.buffer[head_end + 4 : head_end + 4 + length]
            self.buffer = self.buffer[head_end + 4 + length :]
            if b'"stream": true' in body:
                asyncio.get_running_loop().create_task(self._stream(b'"include_usage": true' in body))
            else:
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(self.completion)).encode()
                    + b"\r\n\r\n"
                    + self.completion
                )

    async def _stream(self, usage: bool) -> None:
        write = self.transport.write
        write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        words = ANSWER.split(" ")
        step = max(1, len(words) // STREAM_CHUNKS)
        for i in range(STREAM_CHUNKS):
            delta = " ".join(words[i * step : (i + 1) * step]) + " "
            event = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "chatbot",
                "t": time.perf_counter_ns(),
                "choices": [{"index": 0, "delta": {"content": delta}, "finish_reason": None}],
            }
            _chunk(write, b"data: " + json.dumps(event).encode() + b"\n\n")
            await asyncio.sleep(STREAM_GAP)
        end = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "chatbot",
            "t": time.perf_counter_ns(),
        }
        _chunk(
            write,
            b"data: "
            + json.dumps({**end, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}).encode()
            + b"\n\n",
        )
        if usage:
            counted = {"prompt_tokens": 21, "completion_tokens": 180, "total_tokens": 201}
            _chunk(write, b"data: " + json.dumps({**end, "choices": [], "usage": counted}).encode() + b"\n\n")
        _chunk(write, b"data: [DONE]\n\n")
        write(b"0\r\n\r\n")


def _chunk(write: Any, data: bytes) -> None:
    write(f"{len(data):x}\r\n".encode() + data + b"\r\n")


def serve_upstream(port: int) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Upstream, "127.0.0.1", port, backlog=4096)
        print("ready", flush=True)
        await server.serve_forever()

    asyncio.run(main())


# -- a minimal HTTP/1.1 client (CPU 1) ------------------------------------------------------------


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def post(self, body: bytes, on_event: Any = None) -> int:
        self.writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        if b"transfer-encoding: chunked" in lower:
            while True:
                size = int((await self.reader.readuntil(b"\r\n"))[:-2], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                data = await self.reader.readexactly(size + 2)
                if on_event is not None:
                    on_event(data[:-2], time.perf_counter_ns())
        else:
            at = lower.find(b"content-length:")
            length = int(lower[at + 15 : lower.find(b"\r\n", at)].strip())
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


class Pool:
    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[Connection] = []

    async def post(self, body: bytes, on_event: Any = None) -> int:
        conn = self.idle.pop() if self.idle else await Connection.open(self.port)
        try:
            status = await conn.post(body, on_event)
        except Exception:
            conn.close()
            raise
        self.idle.append(conn)
        return status


async def open_loop(pools: list[Pool], rate: float, seconds: float, body: bytes) -> list[list[float]]:
    """Latencies (s) per pool; pool k's requests are offset by k/len(pools) of a period."""
    period = 1.0 / rate
    results: list[list[float]] = [[] for _ in pools]
    errors = [0]
    tasks = []
    start = time.perf_counter() + 0.1
    count = int(rate * seconds)

    async def one(k: int, due: float) -> None:
        try:
            status = await pools[k].post(body)
        except Exception:
            errors[0] += 1
            return
        if status != 200:
            errors[0] += 1
            return
        results[k].append(time.perf_counter() - due)

    for i in range(count):
        for k in range(len(pools)):
            due = start + i * period + k * period / len(pools)
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(k, due)))
    await asyncio.gather(*tasks)
    if errors[0]:
        print(f"  ({errors[0]} failed requests)")
    return results


async def closed_loop(pool_port: int, concurrency: int, seconds: float, body: bytes) -> tuple[int, int]:
    done, failed = 0, 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, failed
        conn = await Connection.open(pool_port)
        while time.perf_counter() < stop:
            try:
                status = await conn.post(body)
            except Exception:
                failed += 1
                conn.close()
                conn = await Connection.open(pool_port)
                continue
            if status == 200:
                done += 1
            else:
                failed += 1
        conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, failed


async def streams(port_guard: int, port_direct: int, count: int, body: bytes) -> tuple[list[float], list[float]]:
    """Per-chunk latency (s) from the upstream's send stamp to arrival, through the guard and directly."""
    guard, direct = Pool(port_guard), Pool(port_direct)
    lat: dict[str, list[float]] = {"guard": [], "direct": []}

    def recorder(key: str) -> Any:
        def on_event(data: bytes, arrived: int) -> None:
            for line in data.split(b"\n"):
                if line.startswith(b"data: {"):
                    sent = json.loads(line[6:]).get("t")
                    if sent:
                        lat[key].append((arrived - sent) / 1e9)

        return on_event

    for _ in range(count):
        await asyncio.gather(guard.post(body, recorder("guard")), direct.post(body, recorder("direct")))
    return lat["guard"], lat["direct"]


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def ms(value: float) -> str:
    return f"{value * 1000:.2f} ms"


# -- orchestration -----------------------------------------------------------------------------------


def _pinned(cpu: int) -> Any:
    def pin() -> None:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {cpu})

    return pin


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--throughput-rate", type=float, default=1000.0)
    parser.add_argument("--serve-upstream", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream is not None:
        serve_upstream(args.serve_upstream)
        return 0

    from airlock.sandbox.cluster import ClusterThread
    from airlock.sandbox.prometheus import free_port
    from airlock.sandbox.world import Api, load_crds

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0, 1]
    guard_cpu, load_cpu = (cpus[0], cpus[1]) if len(cpus) > 1 else (cpus[0], cpus[0])
    _pinned(load_cpu)()
    work = Path(tempfile.mkdtemp(prefix="airlock-guard-bench-"))
    cluster = ClusterThread().start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        api = Api(cluster.url)
        load_crds(api)
        system = {
            "apiVersion": "airlock.dev/v1alpha1",
            "kind": "AISystem",
            "metadata": {"name": "chatbot", "namespace": "bench"},
            "spec": {"target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chatbot"}},
        }
        api.create(system)
        api.patch("AISystem", "bench", "chatbot", {"status": {"phase": "Healthy"}}, sub="status")
        kubeconfig = cluster.write_kubeconfig(work / "kubeconfig")
        upstream_port, guard_port, metrics_port = free_port(), free_port(), free_port()
        upstream = subprocess.Popen(
            [sys.executable, __file__, "--serve-upstream", str(upstream_port)],
            stdout=subprocess.PIPE,
            preexec_fn=_pinned(load_cpu),
        )
        procs.append(upstream)
        assert upstream.stdout is not None
        assert upstream.stdout.readline().strip() == b"ready"
        (work / "guard.yaml").write_text(json.dumps(GUARD_CONFIG))
        guard = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airlock",
                "guard",
                "--upstream",
                f"http://127.0.0.1:{upstream_port}",
                "--system",
                "bench/chatbot",
                "--listen",
                f"127.0.0.1:{guard_port}",
                "--metrics-host",
                "127.0.0.1",
                "--metrics-port",
                str(metrics_port),
                "--config",
                str(work / "guard.yaml"),
                "--log-level",
                "WARNING",
            ],
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            stdout=(work / "guard.log").open("wb"),
            stderr=subprocess.STDOUT,
            preexec_fn=_pinned(guard_cpu),
        )
        procs.append(guard)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or guard.poll() is not None:
                print((work / "guard.log").read_text()[-2000:])
                return 1
            time.sleep(0.1)
        print(f"guard pinned to CPU {guard_cpu}; upstream stub and load generator to CPU {load_cpu}; logs in {work}")
        asyncio.run(_measure(args, guard_port, upstream_port, metrics_port))
        return 0
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
        cluster.stop()


async def _measure(args: argparse.Namespace, guard_port: int, upstream_port: int, metrics_port: int) -> None:
    body = json.dumps(CHAT).encode()
    stream_body = json.dumps({**CHAT, "stream": True}).encode()
    guard, direct = Pool(guard_port), Pool(upstream_port)
    await open_loop([guard, direct], args.rate, 2.0, body)  # warm-up: connections, caches
    via, plain = await open_loop([guard, direct], args.rate, args.seconds, body)
    print(
        f"\nlatency, 1 KB answers, open loop {args.rate:g} req/s each for {args.seconds:g} s (n={len(via)}/{len(plain)})"
    )
    print(f"  {'':10} {'p50':>10} {'p90':>10} {'p99':>10} {'max':>10}")
    for name, values in (("direct", plain), ("guard", via)):
        print(f"  {name:10} " + " ".join(f"{ms(pct(values, q)):>10}" for q in (50, 90, 99, 100)))
    added = [pct(via, q) - pct(plain, q) for q in (50, 90, 99)]
    print(f"  {'added':10} " + " ".join(f"{ms(a):>10}" for a in added) + "   (target p50 <= 2 ms, p99 <= 10 ms)")

    g, d = await streams(guard_port, upstream_port, args.streams, stream_body)
    print(f"\nstreaming, {args.streams} answers x {STREAM_CHUNKS} chunks, per-chunk latency from the upstream's send")
    for name, values in (("direct", d), ("guard", g)):
        print(f"  {name:10} " + " ".join(f"{ms(pct(values, q)):>10}" for q in (50, 90, 99, 100)))
    print(
        f"  {'added':10} "
        + " ".join(f"{ms(pct(g, q) - pct(d, q)):>10}" for q in (50, 90, 99))
        + "   (target p99 <= 1 ms)"
    )

    done, failed = await closed_loop(guard_port, args.concurrency, args.seconds, body)
    print(
        f"\nthroughput, closed loop {args.concurrency} connections for {args.seconds:g} s: "
        f"{done / args.seconds:,.0f} req/s ({failed} failed)   (target >= 1,000 req/s)"
    )
    (through,) = await open_loop([Pool(guard_port)], args.throughput_rate, args.seconds / 2, body)
    print(
        f"open loop {args.throughput_rate:g} req/s for {args.seconds / 2:g} s: {len(through)} answered, "
        f"p50 {ms(pct(through, 50))}, p99 {ms(pct(through, 99))}"
    )
    text = await asyncio.to_thread(_scrape, metrics_port)
    count = next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("airlock_guard_added_latency_seconds_count")
    )
    total = next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("airlock_guard_added_latency_seconds_sum")
    )
    print(f"the guard's own accounting: mean {ms(total / count)} of guard work per request over {count:,.0f} requests")


if __name__ == "__main__":
    sys.exit(main())
