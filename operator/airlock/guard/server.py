"""One ``airlock guard`` process: the proxy, its metrics and health endpoints, and the watch.

The proxy listens on ``--listen``; ``/metrics``, ``/healthz`` and ``/readyz`` are served on
``--metrics-port`` only, so no path of the upstream's API is shadowed.  Everything runs
on one event loop (one core): the proxy is I/O-bound and its detectors are cheap by
contract, so more loops would add nothing but contention with the model server.

``/readyz`` is 503 until the guard knows its system's state (or with
``--unknown-state serve``): in Kubernetes a guard that cannot see its AISystem gets no
traffic, and while it has traffic it refuses or falls back (never fails open silently).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from aiohttp import web

from airlock.adapters import kube, kubeconfig
from airlock.api import guard as guard_api
from airlock.api.guard import Detector
from airlock.domain import detectors
from airlock.domain.guard import Route, Unknown
from airlock.guard import proxy
from airlock.guard import state as state_module
from airlock.guard.metrics import GuardMetrics

# Which detectors report in which direction (the request is scanned for PII and prompt
# injection; answers for everything else too).
DIRECTIONS: dict[str, tuple[Detector, ...]] = {
    "request": (Detector.PII, Detector.PROMPT_INJECTION),
    "response": (Detector.PII, Detector.CROSS_CUSTOMER, Detector.CANARY, Detector.REFUSAL),
}


@dataclass(frozen=True)
class Options:
    """Everything ``airlock guard`` is told on its command line."""

    upstream: str
    namespace: str
    system: str
    fallback: str | None = None
    host: str = "0.0.0.0"
    port: int = 8080
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 9090
    config: guard_api.GuardSpec | None = None
    kubeconfig: str | None = None
    context: str | None = None
    unknown: Unknown = Unknown.REFUSE
    stale_after: float | None = None
    settings: Mapping[str, float | int] = field(default_factory=dict)  # proxy.Settings overrides


def load_config(path: str | Path) -> guard_api.GuardSpec:
    """Read and validate a ``--config`` file; :class:`~airlock.api.guard.GuardConfigError` names the field."""
    where = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise guard_api.GuardConfigError(where, f"cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise guard_api.GuardConfigError(where, f"not YAML: {exc}") from None
    return guard_api.parse(data, where=where)


# Used only while the detectors module does not export its closed set of kinds.
_DEFAULT_KINDS: dict[Detector, tuple[str, ...]] = {
    Detector.PII: ("email", "phone", "card", "iban", "ssn", "national-id", "ipv4", "ipv6", "secret"),
    Detector.CROSS_CUSTOMER: ("email", "phone", "card", "iban", "ssn", "national-id", "ipv4", "ipv6", "secret"),
    Detector.PROMPT_INJECTION: ("instruction-override", "role-play", "prompt-exfiltration", "encoding"),
    Detector.CANARY: ("canary", "system-prompt"),
    Detector.REFUSAL: ("refusal",),
}


def kinds() -> dict[str, dict[str, tuple[str, ...]]]:
    """direction -> detector -> kinds, from the detectors' closed set of kinds."""
    known: Mapping[Detector, tuple[str, ...]] = getattr(detectors, "KINDS", _DEFAULT_KINDS)
    return {direction: {d.value: tuple(known.get(d, ())) for d in wanted} for direction, wanted in DIRECTIONS.items()}


class GuardServer:
    """The running pieces of one guard; ``start()`` then ``stop()`` (tests run it in their loop)."""

    def __init__(self, options: Options, *, client: kube.KubeClient | None = None) -> None:
        self.options = options
        self.metrics = GuardMetrics(options.namespace, options.system, kinds=kinds())
        self.state = state_module.SystemState(
            namespace=options.namespace,
            name=options.system,
            has_fallback=bool(options.fallback),
            metrics=self.metrics,
            file_config=options.config,
            unknown=options.unknown,
            stale_after=options.stale_after,
        )
        settings = proxy.Settings(upstream=options.upstream, fallback=options.fallback, **options.settings)  # type: ignore[arg-type]
        self.guard = proxy.Guard(settings=settings, state=self.state, metrics=self.metrics)
        self.client = client
        self._runners: list[web.AppRunner] = []
        self._watch: asyncio.Task[None] | None = None
        self.port = options.port
        self.metrics_port = options.metrics_port

    async def start(self) -> None:
        runner = web.AppRunner(self.guard.app(), access_log=None, handler_cancellation=False)
        await runner.setup()
        site = web.TCPSite(runner, self.options.host, self.options.port, backlog=2048)
        await site.start()
        self._runners.append(runner)
        self.port = _bound_port(runner)
        if self.options.metrics_port >= 0:
            health = web.AppRunner(self._health_app(), access_log=None)
            await health.setup()
            await web.TCPSite(health, self.options.metrics_host, self.options.metrics_port).start()
            self._runners.append(health)
            self.metrics_port = _bound_port(health)
        if self.client is not None:
            self._watch = asyncio.create_task(state_module.watch(self.state, self.client), name="guard-watch")

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        if self.client is not None:
            await self.client.close()

    def _health_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=self.metrics.exposition(), content_type="text/plain", charset="utf-8")

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, _: web.Request) -> web.Response:
        route = self.state.route()
        ready = self.state.known or self.options.unknown is Unknown.SERVE
        text = f"route {route.value}: {self.state.reason()}; watch {'up' if self.state.watch_up else 'down'}\n"
        if route is Route.REFUSE and ready:
            text = "contained, no fallback: " + text
        return web.Response(status=200 if ready else 503, text=text)


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise RuntimeError("the guard is not listening")


async def run(options: Options) -> None:
    """Serve until SIGTERM/SIGINT."""
    config = kubeconfig.load(options.kubeconfig, options.context)
    server = GuardServer(options, client=kube.KubeClient(config, timeout=10.0, field_manager="airlock-guard"))
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    state_module.log.info(
        "guard.started",
        namespace=options.namespace,
        system=options.system,
        port=server.port,
        metrics_port=server.metrics_port,
        upstream=options.upstream,
        fallback=options.fallback,
        modes={d.value: m.value for d, m in server.state.modes.items()},
    )
    try:
        await stop.wait()
    finally:
        await server.stop()
