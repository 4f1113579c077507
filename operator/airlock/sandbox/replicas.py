"""Several ``airlock run --leader-elect`` replicas in one world, each with its own identity.

Every replica talks to the sandbox API server as its own user (its name: the
sandbox's bearer tokens name users, ``user:<name>``), so the server's audit
records (:meth:`airlock.sandbox.cluster.SandboxCluster.audit`) say which
replica made each request — what the fencing tests assert on.  A replica may
be put behind a :class:`~airlock.sandbox.partition.Relay` to cut it off from
the API server; its health and metrics ports stay reachable.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airlock.sandbox.cluster import token_for, write_kubeconfig
from airlock.sandbox.partition import Relay
from airlock.sandbox.world import OperatorProcess, World

OPERATOR_NAMESPACE = "airlock-system"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Replica:
    name: str
    user: str
    process: OperatorProcess
    health_port: int
    metrics_port: int
    relay: Relay | None = None

    def readiness(self) -> dict[str, Any] | None:
        """``/readyz`` (role, holder, …), or None while the process does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/readyz", timeout=2) as response:
                found: dict[str, Any] = json.loads(response.read())
                return found
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def role(self) -> str | None:
        report = self.readiness()
        return str(report["role"]) if report else None

    def metrics(self) -> dict[str, float]:
        """airlock_* samples of ``/metrics`` (labels kept in the key); empty while it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as response:
                text = response.read().decode()
        except (OSError, urllib.error.URLError):
            return {}
        values: dict[str, float] = {}
        for line in text.splitlines():
            match = re.match(r"^(airlock_[a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$", line)
            if match:
                values[match.group(1)] = float(match.group(2))
        return values

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, signum: int) -> None:
        assert self.process.process is not None
        self.process.process.send_signal(signum)

    def alive(self) -> bool:
        return self.process.alive()


def start_replica(world: World, name: str, args: Iterable[str] = (), *, relay: bool = False) -> Replica:
    """Start ``airlock run --leader-elect`` as ``name`` (its identity in the Lease and its API user)."""
    user = name
    token = token_for(user)
    cut: Relay | None = None
    cluster = world.cluster
    if cluster is None:
        raise RuntimeError("replicas with their own API users need the sandbox API server, not an external cluster")
    url = cluster.url
    if relay:
        cut = Relay("127.0.0.1", cluster.port).start()
        url = cut.url
    kubeconfig = write_kubeconfig(world.directory / f"kubeconfig-{name}", url, token)
    health, metrics = free_port(), free_port()
    process = OperatorProcess(
        kubeconfig,
        world.prometheus.url,
        world.directory / f"operator-{name}.log",
        [
            "--leader-elect",
            "--identity",
            name,
            "--lease-namespace",
            OPERATOR_NAMESPACE,
            "--operator-username",
            user,
            "--health-port",
            str(health),
            "--metrics-port",
            str(metrics),
            *args,
        ],
    ).start()
    return Replica(name, user, process, health, metrics, cut)
