"""``--health-port``: liveness at ``/healthz``, readiness with the replica's role at ``/readyz``.

Served from the operator's own event loop, so an answer at all means the loop
runs.  Both roles are ready — a standby serves admission webhooks and keeps
warm caches — and ``/readyz`` says which one this replica is::

    {"role": "standby", "identity": "airlock-7c9d-x2", "lease": "airlock-system/airlock", "holder": "airlock-7c9d-q4", ...}

Liveness fails (500) only when the election loop has not run for ``stuck_after``
seconds: a replica wedged like that would never step down or take over, and
is better restarted (client-go's leader-election health adaptor does the same).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp.web

Report = Callable[[], dict[str, Any]]


def app(report: Report, last_tick: Callable[[], float | None], stuck_after: float) -> aiohttp.web.Application:
    async def healthz(_: aiohttp.web.Request) -> aiohttp.web.Response:
        tick = last_tick()
        if tick is not None and time.monotonic() - tick > stuck_after:
            return aiohttp.web.json_response(
                {"status": "stuck", "electionLoopIdleSeconds": round(time.monotonic() - tick, 1)}, status=500
            )
        return aiohttp.web.json_response({"status": "ok"})

    async def readyz(_: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.json_response(report())

    application = aiohttp.web.Application()
    application.add_routes([aiohttp.web.get("/healthz", healthz), aiohttp.web.get("/readyz", readyz)])
    return application


@contextlib.asynccontextmanager
async def serving(
    port: int,
    report: Report,
    *,
    last_tick: Callable[[], float | None] = lambda: None,
    stuck_after: float = 60.0,
    host: str = "0.0.0.0",
) -> AsyncIterator[None]:
    runner = aiohttp.web.AppRunner(app(report, last_tick, stuck_after), handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, host, port).start()
    try:
        yield
    finally:
        await runner.cleanup()
