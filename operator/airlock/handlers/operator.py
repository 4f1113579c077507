"""Every Kopf decorator of the operator, in one place.

Handlers only translate: a watch event becomes an engine call.  Level-triggered
``on.event`` handlers are used throughout, so airlock writes nothing into the
objects' metadata for its own bookkeeping (GitOps tools see no drift) and an
annotation such as ``airlock.dev/shutdown`` is acted on as soon as the watch
delivers it — no timer in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import kopf
import structlog

from airlock.adapters import health, kube, kubeconfig, webhook
from airlock.adapters.leases import LeaseLock
from airlock.adapters.prometheus import PrometheusProvider
from airlock.api import annotations as keys
from airlock.domain import authority, secrets
from airlock.domain.leadership import Timing
from airlock.domain.sharding import Shard
from airlock.engine.core import Engine, Settings
from airlock.engine.followups import Followups
from airlock.engine.leadership import Duties, Elector
from airlock.engine.scheduler import Scheduler

log = structlog.get_logger("airlock.operator")
GROUP, VERSION = "airlock.dev", "v1alpha1"


@dataclass(frozen=True)
class OperatorConfig:
    """What ``airlock run`` was told (flags and environment)."""

    prometheus_url: str
    prometheus_token_file: str | None = None
    prometheus_ca_file: str | None = None
    prometheus_timeout: float = 5.0
    kubeconfig: str | None = None
    context: str | None = None
    status_refresh_seconds: float = 30.0
    # Admission (SPEC §4): who may change responders, and the operator's own identity (exempt).
    admin_groups: tuple[str, ...] = authority.DEFAULT_ADMIN_GROUPS
    operator_username: str = field(
        default_factory=lambda: os.environ.get("AIRLOCK_OPERATOR_USERNAME") or authority.DEFAULT_OPERATOR
    )
    # The only Secrets notification channels may name (the operator's RBAC allows no other).
    notification_secrets: tuple[str, ...] = (secrets.DEFAULT_NOTIFICATION_SECRET,)
    # Serve admission reviews (handlers.admission) when set.
    admission_webhook: webhook.WebhookConfig | None = None
    # Leader election (SPEC §10): act only while holding the Lease; else act at once.
    leader_elect: bool = False
    lease_timing: Timing = field(default_factory=Timing)
    lease_namespace: str | None = None  # default: the kubeconfig's / service account's namespace
    identity: str = ""
    shard: Shard = field(default_factory=Shard)
    health_port: int = 0
    health_address: str = "0.0.0.0"

    def admission(self) -> authority.AdmissionSettings:
        return authority.AdmissionSettings(admin_groups=self.admin_groups, operator=self.operator_username)


def _engine(memo: kopf.Memo) -> Engine:
    engine: Engine = memo["engine"]
    return engine


@kopf.on.login(id="airlock-login")
async def login(memo: kopf.Memo, **_: Any) -> kopf.AiohttpSession:
    config: OperatorConfig = memo["config"]
    try:
        cluster = kubeconfig.load(config.kubeconfig, config.context)
        headers = {**cluster.headers(), **dict(cluster.impersonation())}
        # Our own session, not kopf.ConnectionInfo: Kopf would write inline client keys to temp files.
        session = kube.session(cluster, limit=0)
    except kubeconfig.ConfigError as exc:
        raise kopf.LoginError(str(exc)) from None
    session.headers.update(headers)
    return kopf.AiohttpSession(server=cluster.server, default_namespace=cluster.namespace, aiohttp_session=session)


@kopf.on.startup(id="airlock-startup")
async def startup(memo: kopf.Memo, settings: kopf.OperatorSettings, **_: Any) -> None:
    config: OperatorConfig = memo["config"]
    # Nothing of Kopf's bookkeeping in status (our CRDs' status is structural).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kopf.airlock.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="kopf.airlock.dev")
    settings.posting.level = logging.WARNING
    if config.leader_elect:
        # Kopf posts its own Events outside airlock's client, so outside the fence: off for every replica.
        settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # Initial lists in pages: 10,000 AISystems in one response would set the process's peak memory.
    settings.watching.chunk_size = 500
    # A per-object worker keeps its last event alive until it idles out: 10,000 objects listed at
    # once would keep 10,000 bodies for Kopf's default 5 s.
    settings.queueing.idle_timeout = 1.0
    settings.networking.request_timeout = 30
    cluster = kubeconfig.load(config.kubeconfig, config.context)
    if config.admission_webhook is not None:
        # A self-signed certificate is kept in a Secret, so the registered caBundle stays valid across restarts.
        # Every replica serves the webhooks, so every replica reads (or first makes) it: the one write
        # outside the leader's fence, of no workload and no incident.
        async with kube.KubeClient(cluster) as setup:
            kept = await webhook.persisted_certificate(setup, cluster.namespace, config.admission_webhook)
        # The webhook configurations are static manifests (policies/admission/): Kopf must not manage them.
        settings.admission.server = webhook.server(config.admission_webhook, kept)
        settings.admission.managed = None
    provider = PrometheusProvider(
        config.prometheus_url,
        token_file=config.prometheus_token_file,
        ca_file=config.prometheus_ca_file,
        timeout=config.prometheus_timeout,
    )
    elector: Elector | None = None
    duties: Duties | None = None
    if config.leader_elect:
        timing = config.lease_timing
        # Its own client (own connections, no fence, answers bounded by the renew deadline).
        lease_client = kube.KubeClient(cluster, timeout=timing.renew_deadline)
        memo["lease_client"] = lease_client
        lock = LeaseLock(
            lease_client, config.lease_namespace or cluster.namespace, config.shard.lease_name(), config.shard.labels()
        )
        elector = Elector(
            lock,
            identity=config.identity,
            timing=timing,
            on_started=lambda: duties.started() if duties is not None else None,
            on_stopped=lambda: duties.stopped() if duties is not None else _nothing(),
            shard_count=config.shard.count,
        )
    client = kube.KubeClient(cluster, fence=elector)
    engine = Engine(
        client,
        settings=Settings(status_refresh_seconds=config.status_refresh_seconds),
        provider=provider,
        acting=elector.leading if elector is not None else None,
    )
    duties = Duties(
        start=lambda: [
            Scheduler(engine, provider).run(),
            Followups(engine, notification_secrets=config.notification_secrets).run(),
        ],
        resync=engine.resync,
    )
    memo["engine"] = engine
    memo["client"] = client
    memo["elector"] = elector
    memo["duties"] = duties
    if config.health_port:
        memo["health_task"] = asyncio.create_task(_health(config, elector), name="airlock-health")
    if elector is not None:
        memo["election_task"] = asyncio.create_task(elector.run(), name="airlock-leader-election")
    else:
        duties.started()
    log.info(
        "operator.started",
        prometheus=config.prometheus_url,
        server=cluster.server,
        leader_elect=config.leader_elect,
        identity=config.identity or None,
        shard=str(config.shard) if config.shard.sharded else None,
    )


async def _nothing() -> None:
    return None


async def _health(config: OperatorConfig, elector: Elector | None) -> None:
    def report() -> dict[str, Any]:
        if elector is None:
            return {"role": "leader", "leaderElection": False}
        return {**elector.report(), "shard": str(config.shard)}

    stuck = max(60.0, 5 * config.lease_timing.lease_duration)
    last_tick = (lambda: elector.last_tick) if elector is not None else (lambda: None)
    host = config.health_address
    async with health.serving(config.health_port, report, last_tick=last_tick, stuck_after=stuck, host=host):
        await asyncio.Event().wait()


@kopf.on.cleanup(id="airlock-cleanup")
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    # Leadership first: the election loop stops the duties, then hands the Lease over.
    for name in ("election_task", "health_task"):
        task: asyncio.Task[None] | None = memo.get(name)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    duties: Duties | None = memo.get("duties")
    if duties is not None:
        await duties.stopped()
    for name in ("client", "lease_client"):
        client: kube.KubeClient | None = memo.get(name)
        if client is not None:
            await client.close()


def _in_shard(namespace: str | None, memo: kopf.Memo, **_: Any) -> bool:
    """Kopf filter: this replica's shard serves the object's namespace (every one when unsharded)."""
    config: OperatorConfig = memo["config"]
    return config.shard.owns(namespace or "")


@kopf.on.event(GROUP, VERSION, "containmentpolicies", id="policy-event")
async def policy_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    name = body.metadata.name or ""
    if type == "DELETED":
        await _engine(memo).remove_policy(name)
    else:
        await _engine(memo).upsert_policy(name, dict(body))


# The policies, indexed: Kopf runs no other handler (of any resource) before every index holds
# its initial list, so no AISystem is planned before the policies exist — no spurious
# "ContainmentPolicy not found" at start.  policy_event above still feeds the engine; the index
# only closes the gap between the gate opening and that event being handled.
@kopf.index(GROUP, VERSION, "containmentpolicies", id="policy_index")
async def policy_index(name: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    return {name: _plain(body)}


@kopf.on.event(GROUP, VERSION, "aisystems", id="aisystem-event", when=_in_shard)
async def aisystem_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    engine = _engine(memo)
    policies: kopf.Index[str, dict[str, Any]] = kwargs["policy_index"]
    if type == "DELETED":
        engine.remove_system(body.metadata.namespace or "", body.metadata.name or "")
        return
    ref = str(((body.get("spec") or {}).get("policyRef") or {}).get("name") or "")
    if ref and ref not in engine.policies:
        for policy in policies.get(ref, ()):
            await engine.upsert_policy(ref, policy)
    await engine.upsert_system(_plain(body))


@kopf.on.event(GROUP, VERSION, "aiincidents", id="aiincident-event", when=_in_shard)
async def aiincident_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if type != "DELETED":
        await _engine(memo).upsert_incident(_plain(body))


# Targets airlock has contained: a change (a human, Argo CD self-heal, an HPA)
# is checked at once, and containment re-applied if it was undone.
@kopf.on.event(
    "apps", "v1", "deployments", id="deployment-event", annotations={keys.CONTAINED_BY: kopf.PRESENT}, when=_in_shard
)
async def deployment_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await _engine(memo).target_changed(body.metadata.namespace or "", "Deployment", body.metadata.name or "")


@kopf.on.event(
    "apps", "v1", "statefulsets", id="statefulset-event", annotations={keys.CONTAINED_BY: kopf.PRESENT}, when=_in_shard
)
async def statefulset_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await _engine(memo).target_changed(body.metadata.namespace or "", "StatefulSet", body.metadata.name or "")


# Served only where Argo Rollouts is installed; Kopf picks the resource up when its CRD appears.
@kopf.on.event(
    "argoproj.io",
    "v1alpha1",
    "rollouts",
    id="rollout-event",
    annotations={keys.CONTAINED_BY: kopf.PRESENT},
    when=_in_shard,
)
async def rollout_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await _engine(memo).target_changed(body.metadata.namespace or "", "Rollout", body.metadata.name or "")


# Serving stacks (SPEC §8), each served only where KServe, the Gateway API or Istio is installed.
# Kopf activates a handler when its resource is served (also when the CRD appears later) and
# never fails startup over one that is not: an operator on a cluster without them just has
# no such watch.  Routes are marked with airlock.dev/contained-by while rerouted, like targets.
@kopf.on.event(
    "serving.kserve.io",
    "v1beta1",
    "inferenceservices",
    id="inferenceservice-event",
    annotations={keys.CONTAINED_BY: kopf.PRESENT},
    when=_in_shard,
)
async def inferenceservice_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await _engine(memo).target_changed(body.metadata.namespace or "", "InferenceService", body.metadata.name or "")


@kopf.on.event(
    "gateway.networking.k8s.io",
    "v1",
    "httproutes",
    id="httproute-event",
    annotations={keys.CONTAINED_BY: kopf.PRESENT},
    when=_in_shard,
)
async def httproute_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await _engine(memo).target_changed(body.metadata.namespace or "", "HTTPRoute", body.metadata.name or "")


@kopf.on.event(
    "networking.istio.io",
    "v1",
    "virtualservices",
    id="virtualservice-event",
    annotations={keys.CONTAINED_BY: kopf.PRESENT},
    when=_in_shard,
)
async def virtualservice_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await _engine(memo).target_changed(body.metadata.namespace or "", "VirtualService", body.metadata.name or "")


def _plain(body: kopf.Body) -> dict[str, Any]:
    # A detached copy: Kopf reuses its views; the engine keeps bodies around.
    return copy.deepcopy(dict(body))
