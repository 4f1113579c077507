"""A synthetic AI model server whose failures can be switched on at will.

airlock reacts to Prometheus signals of AI models (error bursts, quality drift, prompt
injections, PII leaks, harmful output, unfairness, runaway cost). Testing that end to end
needs a scrape target that behaves like a real model server *and* can be told to
misbehave on cue; this module is that target.

Design choices, and why:

* Counters are computed lazily, at scrape (or control) time, as the exact integral of
  the configured per-second rate since the previous update. No background thread ticks
  them, so rates seen by Prometheus are exact and a thousand apps cost nothing while idle.
* The clock is injectable (``clock=``) so unit tests advance time instead of sleeping.
* ``/metrics`` is rendered by hand in a fixed order (families, then apps in insertion
  order): it stays cheap with ~1000 apps and output is deterministic.
* Control happens in-process (:meth:`ModelServer.inject` / :meth:`ModelServer.heal`) or
  over HTTP (``POST /control``) when the server runs in another process
  (``python -m airlock.sandbox.model --port P --app ml-prod/chatbot``).
* Each app also answers the OpenAI-compatible API under ``/apps/<namespace>/<app>/v1/``
  (:mod:`airlock.sandbox.chat`), following the same failure switches: a ``privacy``
  failure makes its answers quote other customers' data. ``airlock guard`` in front of
  it produces the real ``airlock_guard_*`` series the shipped policies query.

The families below (``pii_detections_total``, ``answer_helpful_total``, …) are SYNTHETIC
signals for the operator's own tests (exact rates, a thousand apps at no cost); no real
model server exports them, and the shipped policies do not query them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from airlock.sandbox import chat
from airlock.sandbox._http_server import BackgroundServer, TrackingHTTPServer

Clock = Callable[[], float]
AppRef = str | tuple[str, str]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Default parameters of each failure mode; ``inject`` rejects any other parameter name so a
# typo in a test fails loudly instead of silently injecting the default.
FAILURE_DEFAULTS: dict[str, dict[str, float]] = {
    "sudden": {"fraction": 0.5},  # share of requests answered with HTTP 500
    "drift": {"per_minute": 0.05, "floor": 0.0},  # helpful-ratio decline per minute
    "adversarial": {"rate": 2.0},  # prompt-injection detections per second
    "privacy": {"rate": 1.0},  # PII detections per second
    "safety": {"rate": 1.0},  # harmful outputs per second
    "fairness": {"value": 0.5},  # disparity ratio (1.0 is fair; < 0.8 fails the 4/5 rule)
    "cost": {"factor": 10.0},  # token-rate multiplier
    "latency": {"factor": 5.0},  # request-duration multiplier
}
FAILURES: tuple[str, ...] = tuple(FAILURE_DEFAULTS)

# Latency model: every request takes one of these durations with equal weight (scaled by
# the latency factor), which gives a plausible histogram without any randomness.
_LATENCIES: tuple[float, ...] = (0.08, 0.12, 0.18, 0.25, 0.35, 0.5, 0.8, 1.4)
BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, math.inf)


@dataclass(frozen=True)
class Baseline:
    """What a healthy app looks like."""

    request_rate: float = 20.0  # requests per second
    helpful_ratio: float = 0.9  # answer_helpful_total / answer_total
    tokens_per_second: float = 2000.0
    fairness_ratio: float = 1.0


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _fmt(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    return repr(float(value))


@dataclass
class _App:
    """State of one synthetic app: its failure settings and its accumulated counters."""

    namespace: str
    name: str
    version: str
    baseline: Baseline
    last: float  # clock time the counters were last advanced to
    failures: dict[str, dict[str, float]] = field(default_factory=dict)
    # Counters.
    ok: float = 0.0
    errors: float = 0.0
    answers: float = 0.0
    helpful: float = 0.0
    pii: float = 0.0
    injections: float = 0.0
    harmful: float = 0.0
    tokens: float = 0.0
    duration_sum: float = 0.0
    buckets: list[float] = field(default_factory=lambda: [0.0] * len(BUCKETS))
    fallback: bool = False  # a fallback model: its chat gives one safe answer whatever is injected
    chats: int = 0  # chat requests answered so far (the n of the next answer)

    def __post_init__(self) -> None:
        self.labels = f'namespace="{_escape(self.namespace)}",app="{_escape(self.name)}"'
        self._bucket_shares = _bucket_shares(1.0)

    def _param(self, failure: str, name: str, healthy: float) -> float:
        params = self.failures.get(failure)
        return healthy if params is None else params[name]

    def fairness_ratio(self) -> float:
        return self._param("fairness", "value", self.baseline.fairness_ratio)

    def helpful_ratio(self, t: float) -> float:
        base = self.baseline.helpful_ratio
        drift = self.failures.get("drift")
        if drift is None:
            return base
        elapsed = max(0.0, t - drift["since"])
        return max(drift["floor"], base - drift["per_minute"] * elapsed / 60.0)

    def _helpful_integral(self, a: float, b: float) -> float:
        """∫ helpful_ratio(t) dt over [a, b]; exact, as the ratio is piecewise linear."""
        drift = self.failures.get("drift")
        if drift is None or b <= a:
            return self.baseline.helpful_ratio * max(0.0, b - a)
        per_second = drift["per_minute"] / 60.0
        cuts = [drift["since"]]
        if per_second > 0:
            cuts.append(drift["since"] + (self.baseline.helpful_ratio - drift["floor"]) / per_second)
        points = [a, *sorted(c for c in cuts if a < c < b), b]
        # The midpoint rule is exact on each linear piece.
        return sum((hi - lo) * self.helpful_ratio((lo + hi) / 2) for lo, hi in itertools.pairwise(points))

    def advance(self, now: float) -> None:
        """Integrate every counter from ``self.last`` to ``now`` with the current settings."""
        dt = now - self.last
        if dt <= 0:
            return  # a clock that stands still (or goes back) never decrements a counter
        requests = self.baseline.request_rate * dt
        error_share = self._param("sudden", "fraction", 0.0)
        ok = requests * (1.0 - error_share)
        self.ok += ok
        self.errors += requests - ok
        self.answers += ok
        self.helpful += self.baseline.request_rate * (1.0 - error_share) * self._helpful_integral(self.last, now)
        self.pii += self._param("privacy", "rate", 0.0) * dt
        self.injections += self._param("adversarial", "rate", 0.0) * dt
        self.harmful += self._param("safety", "rate", 0.0) * dt
        self.tokens += self.baseline.tokens_per_second * self._param("cost", "factor", 1.0) * dt
        latency_factor = self._param("latency", "factor", 1.0)
        self.duration_sum += requests * latency_factor * sum(_LATENCIES) / len(_LATENCIES)
        for i, share in enumerate(self._bucket_shares):
            self.buckets[i] += requests * share
        self.last = now

    def set_failure(self, failure: str, params: dict[str, float] | None) -> None:
        if params is None:
            self.failures.pop(failure, None)
        else:
            self.failures[failure] = params
        if failure == "latency":
            self._bucket_shares = _bucket_shares(self._param("latency", "factor", 1.0))

    def chat_behaviour(self, now: float) -> chat.Behaviour:
        """What the next chat answer does, from the failures switched on (deterministic shares)."""
        n = self.chats
        self.chats += 1

        def share(fraction: float) -> bool:
            # The n-th request falls in the share when floor((n+1)·f) steps up: exactly f of them.
            return int((n + 1) * fraction) > int(n * fraction)

        return chat.Behaviour(
            leak="privacy" in self.failures,
            refuse="drift" in self.failures and share(1.0 - self.helpful_ratio(now) / self.baseline.helpful_ratio),
            fail=share(self._param("sudden", "fraction", 0.0)),
            fallback=self.fallback,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "app": self.name,
            "version": self.version,
            "fallback": self.fallback,
            "healthy": not self.failures,
            "failures": {name: dict(params) for name, params in self.failures.items()},
        }


def _bucket_shares(latency_factor: float) -> list[float]:
    """Share of requests falling into each cumulative ``le`` bucket."""
    return [sum(1 for lat in _LATENCIES if lat * latency_factor <= le) / len(_LATENCIES) for le in BUCKETS]


def parse_app(ref: str) -> tuple[str, str]:
    """``"ml-prod/chatbot"`` → ``("ml-prod", "chatbot")``."""
    namespace, sep, name = ref.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise ValueError(f"app must be given as NAMESPACE/NAME, got {ref!r}")
    return namespace, name


class ModelFleet:
    """The metric state of many synthetic apps; thread-safe, no HTTP involved.

    :class:`ModelServer` serves one of these; tests that only need the numbers can use
    it directly (``render()`` returns the ``/metrics`` text).
    """

    def __init__(
        self,
        apps: Iterable[tuple[str, str]] = (),
        *,
        clock: Clock = time.time,
        baseline: Baseline | None = None,
        version: str = "v1",
    ) -> None:
        self.clock = clock
        self.baseline = baseline or Baseline()
        self.default_version = version
        self._lock = threading.Lock()
        self._apps: dict[str, _App] = {}
        for namespace, name in apps:
            self.add_app(namespace, name)

    # -- app management -------------------------------------------------------------

    def add_app(self, namespace: str, app: str, *, version: str | None = None, fallback: bool = False) -> None:
        """Add a healthy app (no-op if it exists). Its counters start at 0 now.

        ``fallback``: its chat endpoint always gives the one safe answer of a fallback model.
        """
        with self._lock:
            key = f"{namespace}/{app}"
            if key not in self._apps:
                self._apps[key] = _App(
                    namespace, app, version or self.default_version, self.baseline, self.clock(), fallback=fallback
                )

    def chat(self, app: AppRef, body: dict[str, Any]) -> tuple[int, str, chat.Behaviour, int]:
        """Decide the app's next chat answer: (status, text, behaviour, n)."""
        with self._lock:
            target = self._find(app)
            behaviour = target.chat_behaviour(self.clock())
            n = target.chats - 1
            model = target.name
        if behaviour.fail:
            return 500, model, behaviour, n
        return 200, chat.answer_text(body, n, behaviour), behaviour, n

    @property
    def apps(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(a.namespace, a.name) for a in self._apps.values()]

    def _find(self, ref: AppRef) -> _App:
        # Caller holds the lock.
        if isinstance(ref, tuple):
            key = f"{ref[0]}/{ref[1]}"
        elif "/" in ref:
            key = ref
        else:
            # A bare app name is accepted when it is unambiguous: handy with one app.
            matches = [k for k, a in self._apps.items() if a.name == ref]
            if len(matches) != 1:
                raise KeyError(f"app {ref!r} is {'ambiguous' if matches else 'unknown'}; use NAMESPACE/NAME")
            key = matches[0]
        try:
            return self._apps[key]
        except KeyError:
            raise KeyError(f"unknown app {key!r}; known: {sorted(self._apps)[:10]}") from None

    # -- failure control ------------------------------------------------------------

    def inject(self, app: AppRef, failure: str, **params: float) -> dict[str, Any]:
        """Switch a failure mode on (or re-tune it); other active failures stay on.

        ``failure`` is one of :data:`FAILURES`; ``params`` override
        :data:`FAILURE_DEFAULTS`. Returns the app's new settings.
        """
        if failure not in FAILURE_DEFAULTS:
            raise ValueError(f"unknown failure {failure!r}; expected one of {', '.join(FAILURES)}")
        unknown = set(params) - set(FAILURE_DEFAULTS[failure])
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {sorted(unknown)} for {failure!r}; expected {sorted(FAILURE_DEFAULTS[failure])}"
            )
        with self._lock:
            target = self._find(app)
            now = self.clock()
            # Counters up to now were produced under the old settings.
            target.advance(now)
            settings = {**FAILURE_DEFAULTS[failure], **{k: float(v) for k, v in params.items()}}
            settings["since"] = now
            target.set_failure(failure, settings)
            return target.describe()

    def heal(self, app: AppRef, failure: str | None = None) -> dict[str, Any]:
        """Return the app to healthy (or switch only ``failure`` off). Counters keep counting."""
        if failure is not None and failure not in FAILURE_DEFAULTS:
            raise ValueError(f"unknown failure {failure!r}; expected one of {', '.join(FAILURES)}")
        with self._lock:
            target = self._find(app)
            target.advance(self.clock())
            for name in [failure] if failure else list(target.failures):
                target.set_failure(name, None)
            return target.describe()

    def set_version(self, app: AppRef, version: str) -> dict[str, Any]:
        """Change ``model_info{version}``, e.g. to mimic a rollout or a rollback."""
        with self._lock:
            target = self._find(app)
            target.version = version
            return target.describe()

    def describe(self, app: AppRef | None = None) -> dict[str, Any]:
        with self._lock:
            if app is not None:
                return self._find(app).describe()
            return {"apps": [a.describe() for a in self._apps.values()]}

    def helpful_ratio(self, app: AppRef) -> float:
        """The app's instantaneous helpful ratio right now (for assertions)."""
        with self._lock:
            return self._find(app).helpful_ratio(self.clock())

    # -- exposition -----------------------------------------------------------------

    def render(self) -> str:
        """Prometheus text exposition of all apps, after advancing counters to now."""
        with self._lock:
            now = self.clock()
            apps = list(self._apps.values())
            for a in apps:
                a.advance(now)
            out: list[str] = []
            add = out.append

            def family(name: str, kind: str, help_text: str) -> None:
                add(f"# HELP {name} {help_text}")
                add(f"# TYPE {name} {kind}")

            family("model_info", "gauge", "Deployed model version (always 1).")
            for a in apps:
                add(f'model_info{{{a.labels},version="{_escape(a.version)}"}} 1.0')
            family("model_requests_total", "counter", "Inference requests by HTTP status code.")
            for a in apps:
                add(f'model_requests_total{{{a.labels},code="200"}} {_fmt(a.ok)}')
                add(f'model_requests_total{{{a.labels},code="500"}} {_fmt(a.errors)}')
            family("model_request_duration_seconds", "histogram", "Inference request duration.")
            for a in apps:
                for le, count in zip(BUCKETS, a.buckets, strict=True):
                    add(f'model_request_duration_seconds_bucket{{{a.labels},le="{_fmt(le)}"}} {_fmt(count)}')
                add(f"model_request_duration_seconds_sum{{{a.labels}}} {_fmt(a.duration_sum)}")
                add(f"model_request_duration_seconds_count{{{a.labels}}} {_fmt(a.ok + a.errors)}")
            for name, attr, help_text in _COUNTERS:
                family(name, "counter", help_text)
                for a in apps:
                    add(f"{name}{{{a.labels}}} {_fmt(getattr(a, attr))}")
            family("fairness_disparity_ratio", "gauge", "Outcome-rate ratio of the worst-off group (1 = fair).")
            for a in apps:
                add(f"fairness_disparity_ratio{{{a.labels}}} {_fmt(a.fairness_ratio())}")
            add("")
            return "\n".join(out)


_COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("answer_total", "answers", "Answers given."),
    ("answer_helpful_total", "helpful", "Answers rated helpful."),
    ("pii_detections_total", "pii", "Answers in which PII was detected."),
    ("prompt_injection_detections_total", "injections", "Prompts flagged as injection attempts."),
    ("harmful_output_total", "harmful", "Answers flagged as harmful."),
    ("llm_tokens_total", "tokens", "LLM tokens consumed."),
)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive: Prometheus reuses its scrape connection

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per scrape would drown test output

    def _send(self, status: int, body: str, content_type: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload) + "\n", "application/json")

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, self.server.fleet.render(), CONTENT_TYPE)
        elif path == "/control":
            self._json(200, self.server.fleet.describe())
        elif path in ("/", "/healthz"):
            self._send(200, "ok\n", "text/plain")
        else:
            self._json(404, {"error": f"no such path {path}"})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        match = _CHAT_PATH.fullmatch(path)
        if match:
            self._chat(match.group("namespace"), match.group("app"))
            return
        if path != "/control":
            self._json(404, {"error": f"no such path {self.path}"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(request, dict):
                raise ValueError("the body must be a JSON object")
            self._json(200, control(self.server.fleet, request))
        except (ValueError, KeyError, TypeError) as exc:
            self._json(400, {"error": str(exc).strip("'\"")})

    def _chat(self, namespace: str, app: str) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            status, text, _, n = self.server.fleet.chat((namespace, app), body)
        except KeyError as exc:
            self._json(404, {"error": {"message": str(exc).strip("'\""), "code": "model_not_found"}})
            return
        except ValueError as exc:
            self._json(400, {"error": {"message": str(exc), "code": "invalid_request"}})
            return
        if status != 200:
            self._json(status, {"error": {"message": "the model failed (injected: sudden)", "code": "internal"}})
            return
        if body.get("stream") is True:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for event in chat.stream_events(body, text, app, n):
                self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        self._json(200, chat.completion(body, text, app, n))


# /apps/<namespace>/<app>/v1/chat/completions (and /v1/completions): one OpenAI-compatible model per app.
_CHAT_PATH = re.compile(r"/apps/(?P<namespace>[^/]+)/(?P<app>[^/]+)/v1/(chat/)?completions")


def control(fleet: ModelFleet, request: Mapping[str, Any]) -> dict[str, Any]:
    """Apply one ``POST /control`` request; the body format is documented on :class:`ModelServer`."""
    action = request.get("action", "inject" if "failure" in request else None)
    app = request.get("app")
    if not isinstance(app, str):
        raise ValueError('"app" (NAMESPACE/NAME) is required')
    params = request.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError('"params" must be an object')
    if action == "inject":
        return fleet.inject(app, str(request["failure"]), **{str(k): float(v) for k, v in params.items()})
    if action == "heal":
        failure = request.get("failure")
        return fleet.heal(app, None if failure is None else str(failure))
    if action == "add_app":
        namespace, name = parse_app(app)
        version = request.get("version")
        fleet.add_app(
            namespace, name, version=None if version is None else str(version), fallback=request.get("fallback") is True
        )
        return fleet.describe(app)
    if action == "set_version":
        return fleet.set_version(app, str(request["version"]))
    raise ValueError(f"unknown action {action!r}; expected inject, heal, add_app or set_version")


class _HTTPServer(TrackingHTTPServer):
    def __init__(self, address: tuple[str, int], fleet: ModelFleet) -> None:
        self.fleet = fleet
        super().__init__(address, _Handler)


class ModelServer(BackgroundServer):
    """HTTP server for a :class:`ModelFleet`: ``GET /metrics``, ``GET``/``POST /control``.

    ``POST /control`` takes a JSON object::

        {"action": "inject", "app": "ml-prod/chatbot", "failure": "privacy", "params": {"rate": 2}}
        {"action": "heal", "app": "ml-prod/chatbot"}            # or with "failure": "privacy"
        {"action": "add_app", "app": "ml-prod/summarizer", "version": "v1"}
        {"action": "set_version", "app": "ml-prod/chatbot", "version": "v2"}

    and answers with the app's settings (400 with ``{"error": ...}`` on bad input). Without
    ``"action"``, a body with ``"failure"`` means ``inject``.
    ``GET /control`` lists every app's settings.
    """

    def __init__(
        self,
        port: int = 0,
        apps: Iterable[tuple[str, str]] = (("ml-prod", "chatbot"),),
        *,
        host: str = "127.0.0.1",
        clock: Clock = time.time,
        baseline: Baseline | None = None,
    ) -> None:
        self.fleet = ModelFleet(apps, clock=clock, baseline=baseline)
        super().__init__(host, port)

    thread_name = "model-server"

    def _make_server(self, address: tuple[str, int]) -> TrackingHTTPServer:
        return _HTTPServer(address, self.fleet)

    @property
    def target(self) -> str:
        """``host:port`` as a Prometheus scrape target."""
        return f"{self._host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.target}"

    # In-process conveniences, same semantics as ``POST /control``.

    def inject(self, app: AppRef, failure: str, **params: float) -> dict[str, Any]:
        return self.fleet.inject(app, failure, **params)

    def heal(self, app: AppRef, failure: str | None = None) -> dict[str, Any]:
        return self.fleet.heal(app, failure)

    def add_app(self, namespace: str, app: str, *, version: str | None = None, fallback: bool = False) -> None:
        self.fleet.add_app(namespace, app, version=version, fallback=fallback)

    def chat_url(self, namespace: str, app: str) -> str:
        """The base URL of the app's OpenAI-compatible API (an ``airlock guard --upstream``)."""
        return f"{self.url}/apps/{namespace}/{app}"

    def set_version(self, app: AppRef, version: str) -> dict[str, Any]:
        return self.fleet.set_version(app, version)

    def render(self) -> str:
        return self.fleet.render()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airlock.sandbox.model", description="Serve synthetic AI model metrics."
    )
    parser.add_argument("--port", type=int, default=0, help="listen port (0: pick a free one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--app", action="append", default=[], metavar="NAMESPACE/NAME", help="an app to serve (repeatable)"
    )
    args = parser.parse_args(argv)
    try:
        apps = [parse_app(ref) for ref in args.app or ["ml-prod/chatbot"]]
    except ValueError as exc:
        parser.error(str(exc))
    server = ModelServer(args.port, apps, host=args.host).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"serving {len(apps)} app(s) on {server.url}/metrics (control: {server.url}/control)", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
