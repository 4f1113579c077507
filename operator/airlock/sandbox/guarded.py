"""``airlock guard`` in the sandbox: the guard as a child process, and a chat client that talks through it.

Used by ``airlock demo``, the guard's integration test and the time-to-fallback benchmark:
the guard stands in front of the synthetic model server's OpenAI-compatible chat
(:mod:`airlock.sandbox.chat`), Prometheus scrapes its metrics port, and the client
records every answer it got — when, from which route, and its text — so a caller can
check what a user saw (never another customer's data when redacting) and time the
kill switch from the client's side.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from airlock.sandbox.prometheus import free_port


class GuardProcess:
    """``python -m airlock guard`` for one AISystem, on loopback ports chosen up front."""

    def __init__(
        self,
        *,
        kubeconfig: Path,
        system: str,
        upstream: str,
        log_path: Path,
        fallback: str | None = None,
        config: dict[str, object] | None = None,
        port: int | None = None,
        metrics_port: int | None = None,
        extra: list[str] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.system = system
        self.upstream = upstream
        self.fallback = fallback
        self.log_path = log_path
        self.config = config
        self.port = port or free_port()
        self.metrics_port = metrics_port or free_port()
        self.extra = extra or []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_target(self) -> str:
        """``host:port`` of its /metrics, as a Prometheus scrape target."""
        return f"127.0.0.1:{self.metrics_port}"

    def start(self) -> GuardProcess:
        command = [
            sys.executable,
            "-m",
            "airlock",
            "guard",
            "--upstream",
            self.upstream,
            "--system",
            self.system,
            "--listen",
            f"127.0.0.1:{self.port}",
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            str(self.metrics_port),
            *self.extra,
        ]
        if self.fallback:
            command += ["--fallback-upstream", self.fallback]
        if self.config is not None:
            path = self.log_path.with_suffix(".yaml")
            path.write_text(json.dumps(self.config))  # JSON is YAML
            command += ["--config", str(path)]
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        return self

    def ready(self) -> bool:
        """``/readyz`` answers 200: the guard is up and has seen its AISystem."""
        try:
            with urllib.request.urlopen(f"http://{self.metrics_target}/readyz", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://{self.metrics_target}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass(frozen=True)
class Answer:
    """One answer a client got through the guard."""

    at: float  # time.monotonic() when it was complete
    status: int
    route: str  # X-Airlock-Route: upstream, fallback ("" when the guard refused)
    text: str  # the answer's text as the client saw it (the error message for an error)
    streamed: bool


class ChatClient:
    """A customer asking the chatbot something every ``interval`` seconds, through the guard."""

    def __init__(self, url: str, *, interval: float = 0.2, stream_every: int = 2) -> None:
        self.url = url.rstrip("/") + "/v1/chat/completions"
        self.interval = interval
        self.stream_every = stream_every
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ChatClient:
        self._thread = threading.Thread(target=self._run, name="chat-client", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> ChatClient:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def seen(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)

    def ask(self, n: int) -> Answer:
        stream = self.stream_every > 0 and n % self.stream_every == 1
        body = {
            "model": "chatbot",
            "messages": [{"role": "user", "content": f"Hello, I am customer {n}. Where is my order?"}],
            "stream": stream,
        }
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read().decode()
                status, route = response.status, response.headers.get("X-Airlock-Route", "")
        except urllib.error.HTTPError as exc:
            raw, status, route = exc.read().decode(errors="replace"), exc.code, exc.headers.get("X-Airlock-Route", "")
        except (urllib.error.URLError, OSError) as exc:
            return Answer(time.monotonic(), 0, "", f"connection failed: {exc}", stream)
        return Answer(time.monotonic(), status, route, _text(raw, stream), stream)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            started = time.monotonic()
            answer = self.ask(n)
            with self._lock:
                self.answers.append(answer)
            n += 1
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))


def _text(raw: str, streamed: bool) -> str:
    """The text a user would read: the streamed deltas joined, the message, or the error."""
    if not streamed:
        try:
            body = json.loads(raw)
        except ValueError:
            return raw
        if "error" in body:
            return str(body["error"].get("message", ""))
        return "".join(str(c.get("message", {}).get("content") or "") for c in body.get("choices", []))
    parts: list[str] = []
    for line in raw.splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        try:
            event = json.loads(line[6:])
        except ValueError:
            continue
        if "error" in event:
            parts.append(f" [error: {event['error'].get('message', '')}]")
        for choice in event.get("choices", []):
            parts.append(str((choice.get("delta") or {}).get("content") or ""))
    return "".join(parts)
