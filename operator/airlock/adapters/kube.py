"""A small async client for the Kubernetes API: the only code that writes to the cluster.

Built on aiohttp (as Kopf is) rather than the official synchronous client, so
thousands of systems can be served from one event loop.  Errors are mapped to
three exceptions the engine understands: :class:`NotFound`, :class:`Conflict`
and :class:`ApiError` (everything else, with the server's message).

Fencing (``airlock run --leader-elect``): a client built with a ``fence``
asks it before every write — POST, PUT, PATCH, DELETE — and raises
:class:`Fenced` instead of sending when this replica does not hold its Lease.
Every write the engine, the follow-ups loop and notice delivery make goes
through here, so this one check is what keeps a replica that lost its Lease
from acting.  It is asked twice: once before a connection is taken, and
again by the request body itself (:class:`FencedBody`) at the moment aiohttp
hands the request's first byte to the socket — with no ``await`` between
that check and the kernel's ``send``.  A replica frozen (SIGSTOP, a VM
pause, a long GC) while a write waits for a connection or for its turn on
the event loop therefore finds its term over when it thaws, and sends
nothing.  What no client-side fence can close is a freeze inside those few
synchronous instructions; client-go has the same window, and the margin
between the renew deadline and the lease duration is what covers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from multidict import CIMultiDict

from airlock.adapters.kubeconfig import ClusterConfig

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base


AISYSTEMS = Resource("airlock.dev", "v1alpha1", "aisystems", "AISystem")
AIINCIDENTS = Resource("airlock.dev", "v1alpha1", "aiincidents", "AIIncident")
POLICIES = Resource("airlock.dev", "v1alpha1", "containmentpolicies", "ContainmentPolicy", namespaced=False)
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
STATEFULSETS = Resource("apps", "v1", "statefulsets", "StatefulSet")
ROLLOUTS = Resource("argoproj.io", "v1alpha1", "rollouts", "Rollout")
SERVICES = Resource("", "v1", "services", "Service")
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
SECRETS = Resource("", "v1", "secrets", "Secret")
EVENTS = Resource("", "v1", "events", "Event")
NETWORKPOLICIES = Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy")
SCALEDOBJECTS = Resource("keda.sh", "v1alpha1", "scaledobjects", "ScaledObject")
SELFSUBJECTREVIEWS = Resource("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", False)
# Serving stacks (SPEC §8): served only where KServe, the Gateway API or Istio is installed.
INFERENCESERVICES = Resource("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService")
HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute")
REFERENCEGRANTS = Resource("gateway.networking.k8s.io", "v1beta1", "referencegrants", "ReferenceGrant")
VIRTUALSERVICES = Resource("networking.istio.io", "v1", "virtualservices", "VirtualService")

TARGETS = {
    "Deployment": DEPLOYMENTS,
    "StatefulSet": STATEFULSETS,
    "Rollout": ROLLOUTS,
    "InferenceService": INFERENCESERVICES,
}
ROUTES = {"HTTPRoute": HTTPROUTES, "VirtualService": VIRTUALSERVICES}


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class Fenced(ApiError):
    """A write refused before it was sent: this replica does not (or no longer) hold its Lease."""

    def __init__(self, why: str) -> None:
        super().__init__(0, "NotLeader", why)


class Fence(Protocol):
    def refusal(self) -> str | None:
        """Why this replica may not write now, or None when it may."""


class FencedBody(aiohttp.BytesPayload):
    """A write's body that asks the fence once more as its bytes are about to be sent.

    aiohttp buffers the request line and headers and sends them together with
    the body from ``write_with_length`` (a task of its own, run a loop turn or
    more after the request was started); the fence is asked there, and the
    headers stay unsent when it refuses.
    """

    def __init__(self, value: bytes, fence: Fence, content_type: str) -> None:
        super().__init__(value, content_type=content_type)
        self._fence = fence

    async def write_with_length(self, writer: Any, content_length: int | None) -> None:
        if (why := self._fence.refusal()) is not None:
            raise Fenced(why)
        await super().write_with_length(writer, content_length)


WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DELETE_OPTIONS = {"apiVersion": "v1", "kind": "DeleteOptions"}
# Concurrent requests per client; the connection pool is larger, so a request never waits
# for a connection after the fence was checked.
CONCURRENCY = 32


class KubeClient:
    """One aiohttp session against one API server."""

    def __init__(
        self,
        config: ClusterConfig,
        *,
        timeout: float = 10.0,
        field_manager: str = "airlock",
        fence: Fence | None = None,
    ) -> None:
        self.config = config
        self.fence = fence
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._field_manager = field_manager
        self._slots = asyncio.Semaphore(CONCURRENCY)

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self) -> CIMultiDict[str]:
        headers = CIMultiDict({"Accept": "application/json", **self.config.headers()})
        headers.extend(self.config.impersonation())
        return headers

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # More connections than concurrent requests: a request never queues for one after the fence.
            self._session = session(self.config, limit=CONCURRENCY + 8, timeout=self._timeout)
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        headers = self._headers()
        fence = self.fence if method in WRITES else None
        if fence is not None and body is None:
            body = DELETE_OPTIONS  # every fenced write carries a body: the body is where the last check is made
        data: str | FencedBody | None = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body)
            if fence is not None:
                data = FencedBody(data.encode(), fence, content_type)
        query = dict(params or {})
        if method in ("PATCH", "POST", "PUT"):
            query.setdefault("fieldManager", self._field_manager)
        url = self.config.server + path
        async with self._slots:
            if fence is not None and (why := fence.refusal()) is not None:
                raise Fenced(why)
            try:
                async with self._http().request(method, url, data=data, headers=headers, params=query) as response:
                    text = await response.text()
                    if response.status >= 400:
                        raise _error(response.status, text)
                    return json.loads(text) if text else {}
            except aiohttp.ClientError as exc:
                if isinstance(exc.__cause__, Fenced):
                    raise exc.__cause__ from None
                raise ApiError(0, "ConnectionError", str(exc)) from exc

    async def get(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        return await self.request("GET", resource.path(namespace, name))

    async def get_or_none(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return await self.get(resource, namespace, name)
        except NotFound:
            return None

    async def list(
        self, resource: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector} if label_selector else None
        result = await self.request("GET", resource.path(namespace), params=params)
        items: list[dict[str, Any]] = result.get("items") or []
        return items

    async def create(self, resource: Resource, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", resource.path(namespace), body=body)

    async def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        content_type: str = MERGE,
        sub: str | None = None,
    ) -> dict[str, Any]:
        return await self.request("PATCH", resource.path(namespace, name, sub), body=body, content_type=content_type)

    async def replace(self, resource: Resource, namespace: str | None, name: str, body: Any) -> dict[str, Any]:
        """PUT: with ``metadata.resourceVersion`` set, 409 Conflict if the object changed since."""
        return await self.request("PUT", resource.path(namespace, name), body=body)

    async def delete(self, resource: Resource, namespace: str | None, name: str) -> None:
        with contextlib.suppress(NotFound):
            await self.request("DELETE", resource.path(namespace, name))

    async def served(self, resource: Resource) -> bool:
        """Whether the API server serves ``resource`` at all (its CRD is installed), from API discovery."""
        base = f"/apis/{resource.group}/{resource.version}" if resource.group else f"/api/{resource.version}"
        try:
            found = await self.request("GET", base)
        except NotFound:
            return False
        return any(r.get("name") == resource.plural for r in found.get("resources") or [])

    async def scale(self, resource: Resource, namespace: str, name: str, replicas: int) -> dict[str, Any]:
        """Through the scale subresource, as an autoscaler or `kubectl scale` would."""
        return await self.patch(resource, namespace, name, {"spec": {"replicas": replicas}}, sub="scale")

    async def watch(
        self,
        resource: Resource,
        namespace: str | None = None,
        resource_version: str | None = None,
        *,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        read_timeout: float | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Watch events as dicts; ``read_timeout`` ends a connection that went silent (a dead peer)."""
        params = {"watch": "true", "allowWatchBookmarks": "true"}
        if resource_version:
            params["resourceVersion"] = resource_version
        if field_selector:
            params["fieldSelector"] = field_selector
        if timeout_seconds:
            params["timeoutSeconds"] = str(timeout_seconds)
        headers = self._headers()
        url = self.config.server + resource.path(namespace)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=read_timeout)
        async with self._http().get(url, headers=headers, params=params, timeout=timeout) as response:
            if response.status >= 400:
                raise _error(response.status, await response.text())
            async for line in response.content:
                if line.strip():
                    yield json.loads(line)

    async def event(
        self,
        obj: dict[str, Any],
        type_: str,
        reason: str,
        message: str,
        *,
        now: datetime.datetime | None = None,
    ) -> None:
        """Post a core/v1 Event about ``obj`` (best effort: an Event is never worth failing an action)."""
        meta = obj.get("metadata", {})
        namespace = meta.get("namespace") or "default"
        stamp = (now or datetime.datetime.now(datetime.UTC)).isoformat().replace("+00:00", "Z")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta.get('name', 'airlock')}.{uuid.uuid4().hex[:12]}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "airlock"},
            "reportingComponent": "airlock.dev/operator",
            "reportingInstance": "airlock",
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        with contextlib.suppress(ApiError):
            await self.create(EVENTS, namespace, body)


def session(
    config: ClusterConfig, *, limit: int = 32, timeout: aiohttp.ClientTimeout | None = None
) -> aiohttp.ClientSession:
    """An aiohttp session with ``config``'s TLS settings (client keys loaded from memory, never from a temp file).

    Requests add their own ``Authorization`` (tokens in files and exec credentials are
    re-read, so a session never holds a stale one); Kopf's session gets it from its login.
    """
    connector = aiohttp.TCPConnector(ssl=config.ssl_context(), limit=limit)
    return aiohttp.ClientSession(connector=connector, timeout=timeout or aiohttp.ClientTimeout(total=None))


def _error(status: int, text: str) -> ApiError:
    try:
        payload = json.loads(text)
        reason = str(payload.get("reason") or "")
        message = str(payload.get("message") or text)
    except ValueError:
        reason, message = "", text
    if status == 404:
        return NotFound(status, reason or "NotFound", message)
    if status == 409:
        return Conflict(status, reason or "Conflict", message)
    return ApiError(status, reason or "Error", message[:500])
