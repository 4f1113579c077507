"""A real Prometheus server, run as a throw-away subprocess, for tests and demos.

airlock's decisions hinge on PromQL results, so the sandbox uses the genuine
``prometheus`` binary (Debian package ``prometheus``) rather than a fake: the same query
engine, staleness rules, scrape behaviour and outages the operator meets in production.

Each :class:`PrometheusProcess` owns a loopback port, a data directory and a generated
config (1 s scrape and evaluation intervals, ``honor_labels`` so the model server's
``namespace``/``app`` labels win). It can be killed to simulate an outage and restarted on
the same port and data. History is injected with :meth:`PrometheusProcess.backfill`
(``promtool tsdb create-blocks-from openmetrics``) before start.

Timing to expect (Prometheus 2.42): ready about 1 s after start; the first scrape of a
target only follows ~5 s later, because service discovery and the scrape manager each
batch target updates on a 5 s ticker. The same applies to targets added by
:meth:`PrometheusProcess.set_targets`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

INSTALL_HINT = "apt-get install -y --no-install-recommends prometheus"

Sample = dict[str, Any]  # one element of a PromQL result: {"metric": {...}, "value": [t, "v"]}


class PrometheusError(RuntimeError):
    """Base class of the sandbox Prometheus errors."""


class PrometheusNotInstalled(PrometheusError):
    """The ``prometheus`` (or ``promtool``) binary is not on PATH."""


class PrometheusStartupError(PrometheusError):
    """Prometheus exited or did not become ready in time; the message has the log tail."""


class PrometheusQueryError(PrometheusError):
    """Prometheus answered a query with an error."""


class PrometheusUnavailable(PrometheusQueryError):
    """Prometheus could not be reached (not started, killed, or restarting)."""


def find_binary(name: str) -> str:
    """Absolute path of ``name`` or a :class:`PrometheusNotInstalled` telling how to install it."""
    path = shutil.which(name)
    if path is None:
        raise PrometheusNotInstalled(
            f"{name!r} was not found on PATH; the sandbox needs the real Prometheus. Install it with: {INSTALL_HINT}"
        )
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (Prometheus needs a number, not a bound socket)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class PrometheusProcess:
    """A ``prometheus`` subprocess on ``127.0.0.1:<port>`` scraping ``targets``.

    Use as a context manager, or ``start()`` … ``stop()``. ``data_dir=None`` makes a
    temporary directory that is removed by :meth:`close` (and the context manager); a given
    ``data_dir`` is left in place. Inside it: ``prometheus.yml`` (generated config),
    ``prometheus.log`` (stdout and stderr of every run) and ``tsdb/`` (the storage).
    """

    def __init__(
        self,
        targets: Sequence[str] = (),
        *,
        job: str = "model",
        data_dir: str | os.PathLike[str] | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        retention: str = "3650d",
        rule_files: Sequence[str | os.PathLike[str]] = (),
        extra_args: Sequence[str] = (),
    ) -> None:
        self.binary = find_binary("prometheus")
        self.host = host
        self.port = port or free_port(host)
        self.job = job
        self.targets: list[str] = list(targets)
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.retention = retention
        self.rule_files = [str(Path(p).resolve()) for p in rule_files]
        self.extra_args = list(extra_args)
        self._owned_tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            self._owned_tmp = tempfile.TemporaryDirectory(prefix="airlock-prometheus-")
            root = Path(self._owned_tmp.name)
        else:
            root = Path(data_dir)
            root.mkdir(parents=True, exist_ok=True)
        self.data_dir = root
        # TSDB blocks in a sub-directory so the config, log and backfill input (which live
        # next to it) are never mistaken for blocks.
        self.tsdb_path = root / "tsdb"
        self.tsdb_path.mkdir(exist_ok=True)
        self.config_path = root / "prometheus.yml"
        self.log_path = root / "prometheus.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    # -- configuration --------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def config(self) -> dict[str, Any]:
        """The Prometheus config this instance runs with (as a dict)."""
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "scrape_configs": [
                {
                    "job_name": self.job,
                    # The model server's own namespace/app labels identify the workload.
                    "honor_labels": True,
                    "scrape_timeout": self.scrape_interval,
                    "static_configs": [{"targets": list(self.targets)}] if self.targets else [],
                }
            ],
        }
        if self.rule_files:
            config["rule_files"] = list(self.rule_files)
        return config

    def _write_config(self) -> None:
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        tmp.replace(self.config_path)  # atomic: a concurrent reload never reads half a file

    def set_targets(self, targets: Sequence[str], *, job: str | None = None) -> None:
        """Replace the scrape targets; applied live via ``POST /-/reload`` when running.

        New targets are scraped ~5 s later (Prometheus batches target updates).
        """
        self.targets = list(targets)
        if job is not None:
            self.job = job
        self._write_config()
        if self.running:
            self.reload()

    def reload(self, timeout: float = 10.0) -> None:
        """Make the running Prometheus re-read its config and rule files (synchronous)."""
        try:
            self._http("POST", "/-/reload", timeout=timeout)
        except PrometheusQueryError as exc:
            raise PrometheusError(f"reload failed: {exc}\n{self.log_tail()}") from exc

    # -- lifecycle ------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> Self:
        """Start Prometheus and wait for ``/-/ready``. No-op if already running."""
        if self.running:
            return self
        args = [
            self.binary,
            f"--web.listen-address={self.host}:{self.port}",
            f"--storage.tsdb.path={self.tsdb_path}",
            f"--config.file={self.config_path}",
            "--web.enable-lifecycle",
            f"--storage.tsdb.retention.time={self.retention}",
            *self.extra_args,
        ]
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(args)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                # Own process group: a Ctrl-C aimed at pytest does not race our shutdown.
                start_new_session=True,
            )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise PrometheusStartupError(
                    f"prometheus exited with code {code} before becoming ready on {self.url}\n{self.log_tail()}"
                )
            try:
                self._http("GET", "/-/ready", timeout=1.0)
                return
            except PrometheusQueryError:
                pass
            if time.monotonic() > deadline:
                raise PrometheusStartupError(
                    f"prometheus on {self.url} not ready after {timeout:.0f}s\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop: SIGTERM, then SIGKILL if it has not exited after ``timeout`` s."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def kill(self) -> None:
        """SIGKILL, to simulate an outage or a crash (the WAL is replayed on restart)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def restart(self, timeout: float = 30.0) -> Self:
        """Stop (if running) and start again on the same port, config and data."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop, and remove the data directory if this instance created it."""
        self.stop()
        if self._owned_tmp is not None:
            self._owned_tmp.cleanup()
            self._owned_tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # Last resort against orphaned servers when a test forgets to stop one.
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last {lines} lines of {self.log_path} ---\n{tail}"

    # -- backfill -------------------------------------------------------------------

    def backfill(self, openmetrics_text: str, timeout: float = 120.0) -> None:
        """Turn OpenMetrics text into TSDB blocks in the data directory.

        Must run while Prometheus is stopped (before :meth:`start`, or between
        :meth:`stop` and :meth:`start`): Prometheus only picks up new blocks when it opens
        the TSDB, so the history becomes queryable on the next start. Samples need
        timestamps (seconds) and the text must end with ``# EOF``; see
        :func:`airlock.sandbox.history.openmetrics_history`.
        """
        if self.running:
            raise PrometheusError("backfill() needs Prometheus stopped: call it before start() or after stop()")
        promtool = find_binary("promtool")
        source = self.data_dir / f"backfill-{time.time_ns()}.om"
        source.write_text(openmetrics_text if openmetrics_text.endswith("\n") else openmetrics_text + "\n")
        try:
            result = subprocess.run(
                [promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(source), str(self.tsdb_path)],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        finally:
            source.unlink(missing_ok=True)
        if result.returncode != 0:
            raise PrometheusError(
                f"promtool create-blocks-from openmetrics failed ({result.returncode}):\n"
                f"{result.stderr.strip() or result.stdout.strip()}"
            )

    # -- HTTP API -------------------------------------------------------------------

    def _http(self, method: str, path: str, params: dict[str, str] | None = None, timeout: float = 10.0) -> bytes:
        url = self.url + path
        data = None
        if params:
            encoded = urllib.parse.urlencode(params)
            if method == "GET":
                url += "?" + encoded
            else:
                data = encoded.encode()
        request = urllib.request.Request(url, data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            with contextlib.suppress(ValueError):
                detail = json.loads(detail).get("error", detail)
            raise PrometheusQueryError(f"{method} {path}: HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            raise PrometheusUnavailable(f"{method} {url}: {exc}") from exc

    def _api(self, path: str, params: dict[str, str], method: str = "POST") -> Any:
        # POST keeps long PromQL out of the URL, as the official clients do.
        payload = json.loads(self._http(method, path, params))
        if payload.get("status") != "success":
            raise PrometheusQueryError(f"{path} {params}: {payload.get('error', payload)}")
        return payload["data"]

    def query(self, promql: str, time: float | None = None) -> list[Sample]:
        """Instant query (at ``time``, default now); returns the result vector.

        Scalars and strings come back as a one-element list with empty labels, so callers
        can always iterate.
        """
        params = {"query": promql}
        if time is not None:
            params["time"] = repr(float(time))
        data = self._api("/api/v1/query", params)
        result = data["result"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": result}]
        return list(result)

    def query_value(self, promql: str, time: float | None = None) -> float | None:
        """The value of a single-sample result, or ``None`` when the result is empty."""
        result = self.query(promql, time)
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusQueryError(f"{promql!r} returned {len(result)} series, expected one")
        return float(result[0]["value"][1])

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Sample]:
        """Range query; each sample has ``"values": [[t, "v"], ...]``."""
        data = self._api(
            "/api/v1/query_range",
            {"query": promql, "start": repr(float(start)), "end": repr(float(end)), "step": repr(float(step))},
        )
        return list(data["result"])

    def wait_for(
        self,
        promql: str,
        predicate: Callable[[list[Sample]], bool] = bool,
        timeout: float = 30.0,
        interval: float = 0.25,
    ) -> list[Sample]:
        """Poll ``promql`` until ``predicate(result)`` holds; return that result.

        The default predicate waits for a non-empty result. Unreachable-server errors are
        retried (the server may be restarting); on timeout the last result or error is
        reported.
        """
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                result = self.query(promql)
                if predicate(result):
                    return result
                last = result
            except PrometheusUnavailable as exc:
                last = exc
            if time.monotonic() > deadline:
                raise TimeoutError(f"{promql!r} did not satisfy the predicate within {timeout}s; last: {last}")
            time.sleep(interval)

    def targets_health(self) -> dict[str, str]:
        """``{"host:port": "up" | "down" | "unknown"}`` for this instance's active targets."""
        data = self._api("/api/v1/targets", {"state": "active"}, method="GET")
        return {
            t["discoveredLabels"].get("__address__", t["labels"].get("instance", "")): t["health"]
            for t in data["activeTargets"]
        }

    def wait_for_scrape(self, timeout: float = 30.0, targets: Sequence[str] | None = None) -> None:
        """Wait until every configured target (or those of ``targets``) has been scraped successfully by this run.

        This asks the targets API rather than querying ``up``: after a restart or a
        kill, the previous run's ``up == 1`` samples are still within the 5 m lookback
        and would make the wait return before anything was scraped again.
        """
        expected = set(self.targets if targets is None else targets)
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                health = self.targets_health()
                if all(health.get(t) == "up" for t in expected):
                    return
                last = health
            except PrometheusUnavailable as exc:
                last = exc
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"targets {sorted(expected)} not all scraped successfully after {timeout}s; last health: {last}"
                )
            time.sleep(0.1)
