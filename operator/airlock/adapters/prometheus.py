"""Prometheus access: the only code that queries the metrics provider.

Uses ``prometheus-api-client`` (synchronous, requests-based) in worker threads
with bounded concurrency.  Every failure — connection refused, timeout, a 4xx/5xx,
a malformed answer — becomes :class:`ProviderError`: the engine turns it into
the ``error`` evaluation state, never into ``ok``.
"""

from __future__ import annotations

import asyncio
import datetime
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry


class ProviderError(Exception):
    """Prometheus could not answer."""


@dataclass(frozen=True)
class SeriesValue:
    labels: dict[str, str]
    value: float
    at: datetime.datetime


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[datetime.datetime, float]]


def _ts(value: Any) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(float(value), tz=datetime.UTC)


def _seconds(value: float) -> str:
    """Seconds as Prometheus parses them: a plain decimal to the millisecond, never ``1e+06``."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


class PrometheusProvider:
    def __init__(
        self,
        url: str,
        *,
        token_file: str | None = None,
        ca_file: str | None = None,
        timeout: float = 5.0,
        concurrency: int = 16,
    ) -> None:
        self.url = url.rstrip("/")
        self._token_file = token_file
        self._ca_file = ca_file
        self._timeout = timeout
        self._limit = asyncio.Semaphore(concurrency)
        # One immediate retry (a pooled keep-alive connection may be stale after a Prometheus
        # restart) and no backoff: the library's default (3 retries, 1 s backoff) hides an outage
        # for ~7 s and stalls the whole evaluation cycle; the next interval is the retry.  (A hung
        # Prometheus therefore costs at most two `timeout`s per query.)
        retry = Retry(total=1, backoff_factor=0, status_forcelist=(), raise_on_status=False)
        self._client = PrometheusConnect(url=self.url, disable_ssl=False, timeout=timeout, retry=retry)
        if ca_file:
            self._client._session.verify = ca_file

    def _headers(self) -> dict[str, str] | None:
        if not self._token_file:
            return None
        # Re-read each time: projected tokens rotate.
        return {"Authorization": f"Bearer {Path(self._token_file).read_text().strip()}"}

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        headers = self._headers()
        if headers:
            self._client.headers = headers
        try:
            return fn(*args, **kwargs)
        except PrometheusApiClientException as exc:
            raise ProviderError(f"Prometheus answered an error: {exc}") from None
        except requests.RequestException as exc:
            raise ProviderError(f"Prometheus unreachable at {self.url}: {type(exc).__name__}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError(f"malformed answer from Prometheus: {exc}") from None

    async def instant(self, query: str, at: datetime.datetime | None = None) -> list[SeriesValue]:
        """Evaluate an instant query; NaN samples are dropped (they mean "no value")."""
        params = {"time": str(at.timestamp())} if at else None
        async with self._limit:
            result = await asyncio.to_thread(self._call, self._client.custom_query, query, params)
        return _instant(result)

    async def range(self, query: str, start: datetime.datetime, end: datetime.datetime, step: float) -> list[Series]:
        """Evaluate a range query; Prometheus answers at exactly ``start + k * step`` up to ``end``.

        ``start``, ``end`` and ``step`` go out as plain seconds (millisecond precision, what
        Prometheus keeps).  ``custom_query_range`` itself rounds start and end to whole seconds,
        which moves the whole answer off the caller's grid (a backtest from ``…:57.5Z`` got every
        point at ``…:58``); its ``params`` are merged after its own, so the exact values win.
        A plain number also keeps a fractional step valid ("2.5s" is no Prometheus duration).
        """
        exact = {"start": _seconds(start.timestamp()), "end": _seconds(end.timestamp()), "step": _seconds(step)}
        async with self._limit:
            result = await asyncio.to_thread(
                self._call, self._client.custom_query_range, query, start, end, exact["step"], exact
            )
        out: list[Series] = []
        for item in result or []:
            points = [(_ts(t), float(v)) for t, v in item.get("values", [])]
            out.append(Series(labels=dict(item.get("metric", {})), points=points))
        return out

    async def healthy(self) -> bool:
        try:
            async with self._limit:
                return bool(await asyncio.to_thread(self._call, self._client.check_prometheus_connection))
        except ProviderError:
            return False


def _instant(result: Any) -> list[SeriesValue]:
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        # A scalar query (e.g. `scalar(...)` or a literal): [timestamp, "value"].
        value = float(result[1])
        return [] if math.isnan(value) else [SeriesValue(labels={}, value=value, at=_ts(result[0]))]
    if isinstance(result, list):
        out: list[SeriesValue] = []
        for item in result:
            timestamp, raw = item["value"]
            value = float(raw)
            if math.isnan(value):
                continue
            out.append(SeriesValue(labels=dict(item.get("metric", {})), value=value, at=_ts(timestamp)))
        return out
    raise ProviderError(f"unexpected Prometheus result type: {type(result).__name__}")
