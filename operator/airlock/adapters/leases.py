"""Reading and writing ``coordination.k8s.io/v1`` Leases for leader election.

The only code that turns a Lease into a :class:`airlock.domain.leadership.Record`
and back.  Updates are PUTs carrying the ``resourceVersion`` that was read, so
the API server refuses (409) an update based on a stale read: of two replicas
taking over at once, exactly one wins.

This client must be built on a :class:`~airlock.adapters.kube.KubeClient`
*without* a fence — renewing the Lease is how a replica keeps the right to
write everything else.  It uses its own connection pool for the same reason:
a renewal never queues behind the engine's writes.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from airlock.adapters import kube
from airlock.domain.leadership import Record

LEASES = kube.Resource("coordination.k8s.io", "v1", "leases", "Lease")


def _micro_time(value: datetime.datetime | None) -> str | None:
    """metav1.MicroTime: RFC 3339 with exactly six fractional digits, UTC."""
    if value is None:
        return None
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def record_of(lease: dict[str, Any]) -> Record:
    spec = lease.get("spec") or {}
    return Record(
        holder=str(spec.get("holderIdentity") or ""),
        lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 1),
        acquire_time=_parse_time(spec.get("acquireTime")),
        renew_time=_parse_time(spec.get("renewTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
    )


def spec_of(record: Record) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "leaseDurationSeconds": record.lease_duration_seconds,
        "acquireTime": _micro_time(record.acquire_time),
        "renewTime": _micro_time(record.renew_time),
        "leaseTransitions": record.transitions,
    }
    if record.holder:
        spec["holderIdentity"] = record.holder
    return spec


@dataclass(frozen=True)
class Read:
    record: Record | None
    resource_version: str | None
    labels: dict[str, str]


class LeaseLock:
    """One named Lease in one namespace."""

    def __init__(self, client: kube.KubeClient, namespace: str, name: str, labels: dict[str, str]) -> None:
        if client.fence is not None:
            raise ValueError("the Lease client must not be fenced: renewing is what keeps the right to write")
        self.client = client
        self.namespace = namespace
        self.name = name
        self.labels = dict(labels)

    def describe(self) -> str:
        return f"{self.namespace}/{self.name}"

    async def get(self) -> Read:
        body = await self.client.get_or_none(LEASES, self.namespace, self.name)
        if body is None:
            return Read(None, None, {})
        meta = body.get("metadata") or {}
        return Read(record_of(body), meta.get("resourceVersion"), dict(meta.get("labels") or {}))

    async def create(self, record: Record) -> str | None:
        """Create the Lease holding ``record``; :class:`kube.Conflict` if someone created it first."""
        body = {
            "apiVersion": LEASES.api_version,
            "kind": LEASES.kind,
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": self.labels},
            "spec": spec_of(record),
        }
        created = await self.client.create(LEASES, self.namespace, body)
        version: str | None = (created.get("metadata") or {}).get("resourceVersion")
        return version

    async def update(self, record: Record, resource_version: str | None) -> str | None:
        """Replace the Lease's spec if it is still at ``resource_version`` (else :class:`kube.Conflict`)."""
        body = {
            "apiVersion": LEASES.api_version,
            "kind": LEASES.kind,
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": self.labels,
                "resourceVersion": resource_version,
            },
            "spec": spec_of(record),
        }
        updated = await self.client.replace(LEASES, self.namespace, self.name, body)
        version: str | None = (updated.get("metadata") or {}).get("resourceVersion")
        return version

    async def others(self, label: str) -> list[tuple[str, Read]]:
        """Every other Lease in the namespace that carries ``label`` (airlock's Leases of any shard count)."""
        found: list[tuple[str, Read]] = []
        for body in await self.client.list(LEASES, self.namespace, label_selector=label):
            meta = body.get("metadata") or {}
            name = str(meta.get("name") or "")
            if name and name != self.name:
                found.append((name, Read(record_of(body), meta.get("resourceVersion"), dict(meta.get("labels") or {}))))
        return found
