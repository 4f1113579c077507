"""At scale most cycles change nothing: such a cycle must cost no API call (issue 14).

The engine runs against the sandbox API server (in a background thread) with a
fake clock; what is asserted is what the server received, from its audit records.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from airlock.adapters import kube
from airlock.adapters.kubeconfig import ClusterConfig
from airlock.domain.evaluation import Sample
from airlock.engine.core import Engine, Settings
from airlock.engine.state import SystemEntry
from airlock.sandbox.cluster import ClusterThread
from airlock.sandbox.world import Api, deployment, load_crds

T0 = datetime.datetime(2026, 11, 26, 14, 0, tzinfo=datetime.UTC)
USER = "airlock-engine"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ClusterThread]:
    with ClusterThread() as thread:
        load_crds(Api(thread.url))
        yield thread


@pytest.fixture
async def client(sandbox: ClusterThread) -> AsyncIterator[kube.KubeClient]:
    async with kube.KubeClient(ClusterConfig(server=sandbox.url, token=f"user:{USER}")) as made:
        yield made


class Sent:
    """The requests the engine's client made since the last ``clear()``, from the server's records."""

    def __init__(self, sandbox: ClusterThread) -> None:
        self.sandbox = sandbox
        self.since = sandbox.audit()[-1].seq if sandbox.audit() else -1

    def clear(self) -> None:
        records = self.sandbox.audit()
        self.since = records[-1].seq if records else -1

    def __call__(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.sandbox.audit(user=USER) if r.seq > self.since]

    def status_writes(self) -> int:
        return sum(1 for method, path in self() if method == "PATCH" and path.endswith("/status"))


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, seconds: float) -> datetime.datetime:
        self.now += datetime.timedelta(seconds=seconds)
        return self.now


def system(namespace: str, n: int) -> dict[str, Any]:
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "AISystem",
        "metadata": {"name": f"bot{n}", "namespace": namespace},
        "spec": {
            "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"bot{n}"},
            "monitors": [
                {
                    "name": "pii-leak",
                    "failureMode": "privacy",
                    "query": f'sum(rate(pii_detections_total{{app="bot{n}"}}[1m]))',
                    "interval": "15s",
                    "thresholds": [{"severity": "SEV1", "op": ">", "value": 0.5}],
                }
            ],
            "severities": {"SEV1": {"response": "shutdown", "actions": ["scaleToZero"]}},
        },
    }


async def healthy(engine: Engine, clock: Clock, namespace: str, n: int = 0) -> SystemEntry:
    api = Api(engine.client.config.server)
    api.create(deployment(namespace, f"bot{n}", f"bot{n}"))
    entry = await engine.upsert_system(api.create(system(namespace, n)))
    await engine.reconcile(entry, {"pii-leak": Sample(at=clock.now, value=0.0)})
    assert entry.status.phase is not None
    assert entry.status.phase.value == "Healthy"
    return entry


def status_of(sandbox: ClusterThread, namespace: str, n: int = 0) -> dict[str, Any]:
    obj = sandbox.get_object("aisystems.airlock.dev", namespace, f"bot{n}")
    assert obj is not None
    found: dict[str, Any] = obj["status"]
    return found


async def test_a_cycle_that_changes_only_values_sends_nothing_and_the_refresh_writes_the_latest(
    sandbox: ClusterThread, client: kube.KubeClient
) -> None:
    clock = Clock()
    engine = Engine(client, clock=clock, settings=Settings(status_refresh_seconds=3600))
    entry = await healthy(engine, clock, "quiet")
    entry.refresh_phase = 0.5  # this system's refresh falls half-way through each hour: T0 + 30 min
    sent = Sent(sandbox)
    for step in range(1, 4):
        now = clock.advance(15)
        await engine.reconcile(entry, {"pii-leak": Sample(at=now, value=0.01 * step)})
        assert sent() == []
        assert entry.status.monitors[0].value == 0.01 * step  # the latest value is known in memory
    clock.advance(1800 - 45 - 1)
    await engine.reconcile(entry, {"pii-leak": Sample(at=clock.now, value=0.1)})
    assert sent() == []
    assert status_of(sandbox, "quiet")["monitors"][0]["value"] == 0.0
    now = clock.advance(1)  # T0 + 30 min: the refresh writes the values, once
    await engine.reconcile(entry, {"pii-leak": Sample(at=now, value=0.2)})
    await engine.reconcile(entry, {"pii-leak": Sample(at=clock.advance(15), value=0.3)})
    assert sent.status_writes() == 1
    assert len(sent()) == 1
    assert status_of(sandbox, "quiet")["monitors"][0]["value"] == 0.2
    assert status_of(sandbox, "quiet")["phase"] == "Healthy"


async def test_a_change_of_state_is_acted_on_at_once(sandbox: ClusterThread, client: kube.KubeClient) -> None:
    clock = Clock()
    engine = Engine(client, clock=clock, settings=Settings(status_refresh_seconds=3600))
    entry = await healthy(engine, clock, "breach")
    sent = Sent(sandbox)
    await engine.reconcile(entry, {"pii-leak": Sample(at=clock.advance(15), value=0.9)})
    assert ("POST", "/apis/airlock.dev/v1alpha1/namespaces/breach/aiincidents") in sent()
    assert ("PATCH", "/apis/apps/v1/namespaces/breach/deployments/bot0/scale") in sent()
    assert status_of(sandbox, "breach")["phase"] == "ShutDown"


async def test_an_annotation_since_the_last_full_cycle_takes_the_full_path(
    sandbox: ClusterThread, client: kube.KubeClient
) -> None:
    clock = Clock()
    engine = Engine(client, clock=clock, settings=Settings(status_refresh_seconds=3600))
    entry = await healthy(engine, clock, "annotated")
    body = Api(sandbox.url).annotate(
        "AISystem", "annotated", "bot0", {"airlock.dev/drill": "privacy/1", "airlock.dev/requested-by": "nobody"}
    )
    entry.body = body  # as the watch event leaves it when its own reconcile waited for the lock
    sent = Sent(sandbox)
    await engine.reconcile(entry, {"pii-leak": Sample(at=clock.advance(15), value=0.0)})
    assert ("POST", "/api/v1/namespaces/annotated/events") in sent()  # the refusal: nobody may drill


async def test_value_refreshes_are_spread_over_the_period_and_capped_in_rate(
    sandbox: ClusterThread, client: kube.KubeClient
) -> None:
    clock = Clock()
    # 200 systems, at most 5 value-only writes a second: the period stretches from 30 s to 40 s.
    settings = Settings(status_refresh_seconds=30, status_refresh_writes_per_second=5)
    engine = Engine(client, clock=clock, settings=settings)
    entries = [await healthy(engine, clock, "fleet", n) for n in range(200)]
    sent = Sent(sandbox)
    per_second: list[int] = []
    for second in range(1, 81):
        now = clock.advance(1)
        before = sent.status_writes()
        for entry in entries:
            await engine.reconcile(entry, {"pii-leak": Sample(at=now, value=second / 1000)})
        per_second.append(sent.status_writes() - before)
    assert len(sent()) == sum(per_second)  # nothing but those status writes
    assert 350 <= sum(per_second) <= 400  # each system once per 40 s period: 2 periods in 80 s
    assert max(per_second) <= 20  # spread over the period: never a burst of all 200
