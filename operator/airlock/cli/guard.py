"""``airlock guard``: the inspecting reverse proxy in front of one AISystem's model (SPEC §9 flags are binding)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from typing import Any

from airlock.adapters import logging as airlock_logging
from airlock.api.durations import DurationError, parse_seconds


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "guard",
        help="run the inspecting proxy in front of a model (detectors, redaction, kill switch)",
        description=(
            "Proxy an OpenAI-compatible model server: scan requests and answers (pii, cross-customer, "
            "prompt-injection, canary, refusal), observe/redact/block per detector, export metrics, and "
            "answer from the fallback (or 503) while the AISystem is Contained or ShutDown."
        ),
    )
    parser.add_argument("--upstream", required=True, help="the model server's base URL, e.g. http://chatbot-v7:8000")
    parser.add_argument("--listen", default="0.0.0.0:8080", help="HOST:PORT to serve on (default 0.0.0.0:8080)")
    parser.add_argument("--system", required=True, metavar="NS/NAME", help="the AISystem this guard serves")
    parser.add_argument(
        "--fallback-upstream", default=None, help="base URL answering while the system is contained (else 503)"
    )
    parser.add_argument("--config", default=None, help="YAML file: detectors' modes (see README, 'The guard')")
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("AIRLOCK_GUARD_METRICS_PORT", "9090")),
        help="port for /metrics, /healthz and /readyz (default 9090; 0 picks a free port)",
    )
    parser.add_argument("--metrics-host", default="0.0.0.0", help="address for the metrics port (default 0.0.0.0)")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: KUBECONFIG or in-cluster)")
    parser.add_argument("--context", default=None, help="kubeconfig context")
    parser.add_argument(
        "--unknown-state",
        choices=("refuse", "serve"),
        default="refuse",
        help="while the system's state is unknown: refuse (fallback or 503; the default) or serve the model",
    )
    parser.add_argument(
        "--stale-after",
        default=None,
        metavar="DURATION",
        help="treat the last known state as unknown after this long without the API server (default: never)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=4 * 1024 * 1024,
        help="largest guarded request body; larger ones get 413 (default 4 MiB)",
    )
    parser.add_argument(
        "--max-answer-bytes",
        type=int,
        default=16 * 1024 * 1024,
        help="largest non-streamed answer read from the upstream; larger ones get 502 (default 16 MiB)",
    )
    parser.add_argument(
        "--upstream-timeout",
        default="60s",
        metavar="DURATION",
        help="longest silence from the upstream, before its headers or between chunks (504; default 60s)",
    )
    parser.add_argument("--connect-timeout", default="5s", metavar="DURATION", help="TCP connect timeout (default 5s)")
    parser.add_argument("--retry-after", type=int, default=30, help="Retry-After seconds of a 503 (default 30)")
    parser.add_argument(
        "--stream-window",
        type=int,
        default=256,
        help="characters of a streamed answer kept as context for the detectors (default 256, at least 64)",
    )
    parser.add_argument("--log-level", default=os.environ.get("AIRLOCK_LOG_LEVEL", "INFO"))
    parser.set_defaults(func=run)


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--listen: expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _system(text: str) -> tuple[str, str]:
    namespace, sep, name = text.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise ValueError(f"--system: expected NAMESPACE/NAME, got {text!r}")
    return namespace, name


def _url(flag: str, text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise ValueError(f"{flag}: expected an http:// or https:// URL, got {text!r}")
    return text


def run(args: argparse.Namespace) -> int:
    # Imported here: the proxy's modules are not needed by any other verb.
    from airlock.api.guard import GuardConfigError
    from airlock.domain.guard import Unknown
    from airlock.guard import server

    try:
        host, port = _listen(args.listen)
        namespace, name = _system(args.system)
        upstream = _url("--upstream", args.upstream)
        fallback = _url("--fallback-upstream", args.fallback_upstream) if args.fallback_upstream else None
        stale_after = parse_seconds(args.stale_after) if args.stale_after else None
        upstream_timeout = parse_seconds(args.upstream_timeout)
        connect_timeout = parse_seconds(args.connect_timeout)
        if args.max_body_bytes <= 0 or args.max_answer_bytes <= 0:
            raise ValueError("--max-body-bytes and --max-answer-bytes must be positive")
        if args.stream_window < 64:
            raise ValueError("--stream-window must be at least 64 characters")
        config = server.load_config(args.config) if args.config else None
    except (ValueError, DurationError, GuardConfigError) as exc:
        print(f"airlock guard: {exc}", file=sys.stderr)
        return 2
    airlock_logging.configure(args.log_level)
    options = server.Options(
        upstream=upstream,
        fallback=fallback,
        namespace=namespace,
        system=name,
        host=host,
        port=port,
        metrics_host=args.metrics_host,
        metrics_port=args.metrics_port,
        config=config,
        kubeconfig=args.kubeconfig,
        context=args.context,
        unknown=Unknown(args.unknown_state),
        stale_after=stale_after,
        settings={
            "max_body_bytes": args.max_body_bytes,
            "max_answer_bytes": args.max_answer_bytes,
            "upstream_timeout": upstream_timeout,
            "connect_timeout": connect_timeout,
            "retry_after": args.retry_after,
            "stream_window": args.stream_window,
        },
    )
    try:
        _event_loop_policy()
        asyncio.run(server.run(options))
    except Exception as exc:  # startup failures (no kubeconfig, port in use) end with a clear line
        print(f"airlock guard: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def _event_loop_policy() -> None:
    """uvloop when installed: the proxy's per-request overhead is mostly the event loop's."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
