"""A Kubernetes API server in a Python process, for tests, the demo, and kubectl.

airlock is a Kopf operator; its integration tests and its demo need a cluster, and this
machine has none (nor Docker, nor internet). :class:`SandboxCluster` is an in-memory API
server that speaks enough of the real protocol for Kopf 1.45, the ``kubernetes`` client
and the real kubectl binary to work against it unmodified, over plain HTTP.

It subclasses ``kmock.KubernetesEmulator`` so tests keep kmock's conveniences: recent
requests are recorded (``cluster.requests``-style views, ``cluster['patch'] ...``; the last
``max_requests``, with who made each and what it got in :meth:`SandboxCluster.audit`), faults
can be injected with reactions that take priority over the emulation
(``cluster['get', kmock.resource('apps/v1/deployments')] << 500``), and kmock's per-object
version history (``cluster.objects[...]``) is kept. The parts kmock 0.8 lacks or gets
wrong are replaced (see the ``_k8s_*`` modules): resourceVersions/uid/generation, 409 on
stale writes, 422 on failed patches, label/field selectors, ``/status`` and ``/scale``,
typed lists, discovery, PUT, namespaces, the four patch types, watch-from-RV with 410,
finalizers, CRDs, identities, admission (Python hooks, webhooks over HTTPS, ValidatingAdmissionPolicies
in CEL), server-side Tables.

How to run it:

* ``async with serve() as server:`` – in the current event loop (``server.url``);
* :class:`ClusterThread` – in a background thread, for synchronous tests, kubectl
  subprocesses and operator subprocesses (``write_kubeconfig``);
* ``python -m airlock.sandbox.cluster --port P --kubeconfig FILE`` – standalone.

Known differences from a real API server are listed in :data:`KNOWN_GAPS`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import copy
import json
import logging
import signal
import threading
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

import aiohttp.web
import attrs
import kmock
import yaml

from airlock.sandbox import _k8s_audit as audit
from airlock.sandbox import _k8s_discovery as discovery
from airlock.sandbox import _k8s_errors as errors
from airlock.sandbox import _k8s_openapi as openapi
from airlock.sandbox import _k8s_schema as schemas
from airlock.sandbox._k8s_admission import (
    Admission,
    AdmissionDenied,
    AdmissionHook,
    ResourceRef,
    collecting_warnings,
    warning_header,
)
from airlock.sandbox._k8s_errors import ApiError
from airlock.sandbox._k8s_http import (
    ApiRequest,
    json_response,
    kmock_action,
    objects_response,
    parse_route,
    status_response,
    watch_response,
)
from airlock.sandbox._k8s_identity import UserInfo, authenticate, current_user, parse_token, token_for
from airlock.sandbox._k8s_identity import reset_current_user as _reset_user
from airlock.sandbox._k8s_identity import set_current_user as _set_user
from airlock.sandbox._k8s_objects import JSONObject, now, scale_view
from airlock.sandbox._k8s_patches import json_patch, merge_patch, strategic_merge_patch
from airlock.sandbox._k8s_registry import BUILTIN_TYPES, Registry, ResourceType
from airlock.sandbox._k8s_selectors import parse_field_selector, parse_label_selector
from airlock.sandbox._k8s_store import Store
from airlock.sandbox._k8s_watch import EventLog
from airlock.sandbox._k8s_webhooks import WebhookCall

__all__ = [
    "KNOWN_GAPS",
    "AdmissionDenied",
    "AdmissionHook",
    "ApiError",
    "ClusterThread",
    "ResourceRef",
    "RunningServer",
    "SandboxCluster",
    "UserInfo",
    "WebhookCall",
    "current_user",
    "kubeconfig",
    "main",
    "serve",
    "token_for",
    "write_kubeconfig",
]

logger = logging.getLogger("airlock.sandbox.cluster")

KNOWN_GAPS = """\
- Plain HTTP only, no TLS or client certificates. Identity comes from user:<name>[:<groups>] bearer
  tokens (anything else is 401) and Impersonate-* headers. client-go (kubectl) sends no credentials
  over plain HTTP, so write_kubeconfig() mirrors the token into the kubeconfig's as/as-groups.
- No authorization: RBAC objects are stored and served but never enforced; anyone may impersonate.
- Admission runs on API writes (not preload()) in the real server's order: SandboxCluster.admission
  Python hooks and MutatingWebhookConfigurations, then a custom resource's schema (pruned and
  defaulted again after mutation, then validated), then ValidatingAdmissionPolicies (with bindings
  and params) and ValidatingWebhookConfigurations; dryRun=All goes through all of it. Not there:
  MutatingAdmissionPolicies, audit annotations and the Audit action (no audit log), CEL cost budgets
  of policies, policy status (typeChecking), the CEL authorizer (an expression using it errs, and
  failurePolicy decides). In admission, CEL property escaping goes by field name, not by schema:
  reserved words (namespace, ...) become __word__ except under map fields (annotations, labels, data,
  ...). Webhooks get admission.k8s.io/v1 reviews only; clientConfig.service is reached through
  SandboxCluster(service_endpoints=...) as there is no cluster network (the certificate is still
  checked against the service's DNS name and caBundle). Admission runs under the store's single write
  lock, so a slow webhook delays every write. generateName is resolved before admission.
- No controllers: Deployments/StatefulSets/ReplicaSets never get Pods or status (kubectl rollout status
  waits forever); no garbage collection: ownerReferences and propagationPolicy are accepted and ignored,
  nothing cascades; deleting a Namespace deletes only the Namespace (no Terminating phase, no content
  cleanup); deleting a CRD removes its custom resources at once, finalizers notwithstanding.
- Objects may be created in namespaces that do not exist (NamespaceLifecycle is off).
- Custom resources are pruned, defaulted and validated against their CRD version's schema, CEL rules
  included (_k8s_schema), but: formats other than date-time, date, int32 and int64 are not checked;
  optionalOldSelf is not supported (transition rules run on updates only); ratcheting skips unchanged
  subtrees, correlating list items only in map and set lists; metadata is pruned to ObjectMeta's field
  names but its values are not validated. CRDs are refused for non-structural schemas, bad list types,
  invalid defaults, CEL that does not compile and an estimate of the CEL cost budget close to, not
  identical with, the API server's; other CRD rules (name conflicts, conversion, version changes) are
  not checked.
- CEL, in CRD rules and admission alike (one evaluator, _k8s_cel on cel-python): no runtime cost limit
  (an expression is never stopped half-way); no optional types and no url/ip/cidr/quantity/format/sets
  libraries (an expression using them fails to compile or evaluate, as the caller then decides).
- Built-ins are validated only for their names and get a few defaults (Deployment/StatefulSet/
  ReplicaSet replicas=1, Service type and a fake clusterIP, Namespace phase, finalizer and name label);
  fieldValidation=Strict does not notice unknown fields in them. metadata.generation is kept for every
  kind (a real server leaves it unset for e.g. ConfigMaps). No managedFields, no selfLink.
- OpenAPI: /openapi/v3 serves a document per group-version with every resource's paths (PATCH declares
  fieldValidation, so kubectl validates through the server) but schemas only for custom resources, so
  `kubectl explain` works for those only; /openapi/v2 is 404.
- Server-side apply is approximated: create if absent, else a strategic merge (built-ins) or merge
  (custom resources) of the applied object; no field-manager conflicts, and fields dropped from a
  later apply are not removed.
- Strategic merge patch: merge keys are chosen by field name for the common keyed lists;
  $setElementOrder and $retainKeys are ignored. Custom resources reject it with 415, like a real server.
- PUT on a missing object is 404 (no create-on-update); PUT without metadata.resourceVersion is an
  unconditional update for every resource. DELETE ignores gracePeriodSeconds (Pods go at once).
- Multi-version CRDs share one storage; objects are served under each version with only apiVersion
  rewritten (conversion strategy None). core/v1 and events.k8s.io/v1 Events are separate stores.
- fieldSelector accepts any dotted path with =, ==, != (a real server allows only a few per kind).
- Lists ignore resourceVersion/resourceVersionMatch (always the latest state); continue tokens page
  through the current state, not a snapshot.
- Watch: the whole change log is kept unless max_watch_changes is set or compact() is called; no
  server-imposed watch timeout (timeoutSeconds=0 or absent means none); bookmarks are sent every
  bookmark_interval seconds (default 10) when allowed.
- No aggregated discovery (clients fall back to the legacy documents), no Pod logs/exec/attach/
  port-forward/eviction, no proxy, no CBOR; responses are always JSON. Protobuf request bodies are
  decoded only for what kubectl's create generators send (Namespace, ConfigMap, Secret, ServiceAccount,
  Service, Deployment; common fields); other protobuf bodies get 415 (e.g. kubectl create role|job):
  use kubectl apply -f / create -f for those.
- Server-side printing (Tables) covers the common built-in kinds and CRD printer columns with a JSONPath
  subset; other kinds print NAME and AGE.
- Every object version is kept in memory (kmock's history): fine for tests, demos and benchmarks of
  minutes, not for soak runs of days. Requests are kept only up to max_requests (default 10,000: kmock's
  request log and the audit records). /version reports v1.36.0.
- A patch that removes the last annotation or label leaves metadata.annotations/labels as {}; a real
  server omits the empty map.
"""

T = TypeVar("T")

_DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_VERSION_INFO = {
    "major": "1",
    "minor": "36",
    "gitVersion": "v1.36.0-airlock-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-04-22T00:00:00Z",
    "goVersion": "go1.25.9",
    "compiler": "gc",
    "platform": "linux/amd64",
}


class _Unclaimed(Exception):
    """Raised by the lowest-priority kmock reaction: no user reaction took the request."""


# The request being served, for the native handler that runs after kmock's dispatcher.
_current_request: contextvars.ContextVar[ApiRequest | None] = contextvars.ContextVar("sandbox_request", default=None)


@attrs.define(kw_only=True)
class SandboxCluster(kmock.KubernetesEmulator):
    """An in-memory Kubernetes API server (see the module docstring).

    Admission configuration written through the API (ValidatingAdmissionPolicies and their
    bindings, Mutating/ValidatingWebhookConfigurations) is enforced as a real server enforces
    it (``_k8s_admission``); ``service_endpoints`` maps webhook Services to reachable addresses
    (``{"name.namespace.svc:443": "127.0.0.1:9443"}``) and ``webhook_calls`` records every call.

    ``admission`` hooks are called before every persisted write as
    ``hook(operation, resource, old, new, user)`` (operation CREATE/UPDATE/DELETE,
    ``resource`` a :class:`ResourceRef`, ``user`` a :class:`UserInfo`); a hook returns a
    replacement object (mutation) or None, and raises :class:`AdmissionDenied` (403) or
    :class:`ApiError` to reject the write. Hooks may be async.
    """

    admission: list[AdmissionHook] = attrs.field(factory=list)
    # Where webhook Services are reached (there is no cluster network): "name.namespace.svc:443" -> "host:port".
    service_endpoints: dict[str, str] = attrs.field(factory=dict)
    # Trim the watch log to this many changes (older resourceVersions then get 410 Gone).
    max_watch_changes: int | None = None
    bookmark_interval: float = 10.0
    # Requests remembered (kmock's log and the audit records); None keeps every one.
    max_requests: int | None = 10_000
    internal_errors: list[BaseException] = attrs.field(factory=list, init=False)
    _audit: audit.AuditLog = attrs.field(init=False)
    _own_fallback: Any = attrs.field(default=None, init=False)
    _registry: Registry = attrs.field(factory=Registry, init=False)
    _log: EventLog = attrs.field(init=False)
    _store: Store = attrs.field(init=False)
    _admission: Admission = attrs.field(init=False)
    _server_address: str = attrs.field(default="127.0.0.1:0", init=False)

    def __attrs_post_init__(self) -> None:
        # Deliberately not calling kmock's post-init: its discovery and CRUD fallbacks are
        # what this class replaces. User reactions (higher priority) still come first.
        self._log = EventLog(self.max_watch_changes)
        self._admission = Admission(self.admission, self.service_endpoints)
        self._store = Store(self._registry, self._objects, self._log, self._admission)
        for rt in BUILTIN_TYPES:
            self._registry.register(rt)
        for namespace in _DEFAULT_NAMESPACES:
            self.preload({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        self._own_fallback = self.fallback << _Unclaimed
        self._requests = audit.Recent(self.max_requests)
        self._audit = audit.AuditLog(self.max_requests)

    # -- public helpers (call them on the cluster's event loop; ClusterThread does) -------

    @property
    def resource_version(self) -> int:
        """The current global resourceVersion: compare with the versions in :meth:`history`."""
        return self._log.resource_version

    @property
    def registry(self) -> Registry:
        return self._registry

    def resolve(self, resource: str) -> ResourceType:
        """A served resource by any kubectl-style name (``deploy``, ``deployments.apps``, ...)."""
        return self._registry.resolve(resource)

    def preload(self, obj: JSONObject) -> JSONObject:
        """Store an object as if created (metadata filled in), bypassing admission.

        Unlike an API create, a given ``status`` is kept. The resource is found from
        ``apiVersion``/``kind``; namespaced objects default to the ``default`` namespace.
        """
        rt = self._registry.by_kind(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        if rt is None:
            raise LookupError(f"the sandbox serves no {obj.get('apiVersion')}/{obj.get('kind')}")
        return self._store.insert(rt, obj)

    def get_object(self, resource: str, namespace: str | None, name: str) -> JSONObject | None:
        """The current state of an object, or None."""
        rt = self.resolve(resource)
        obj = self._store.current(rt, namespace, name)
        return copy.deepcopy(obj) if obj is not None else None

    def history(self, resource: str, namespace: str | None, name: str, *, since: int | None = None) -> list[JSONObject]:
        """All stored versions of an object, oldest first, across deletions and re-creations.

        ``since`` keeps only versions written after that global resourceVersion (take it
        from :attr:`resource_version` at "time T").
        """
        rt = self.resolve(resource)
        key = (
            kmock.resource(rt.group, rt.effective_storage_version, rt.plural),
            namespace if rt.namespaced else None,
            name,
        )
        if key not in self._objects:
            return []
        versions = [copy.deepcopy(v.raw) for v in self._objects[key].history if v is not None]
        if since is not None:
            versions = [v for v in versions if int(v["metadata"]["resourceVersion"]) > since]
        return versions

    def audit(self, *, user: str | None = None, since: float | None = None) -> list[audit.AuditRecord]:
        """The recent requests (see ``max_requests``) with caller, verb, path and status code.

        ``since`` is a ``time.monotonic()`` reading of this process; ``user`` a username
        after impersonation (e.g. ``system:serviceaccount:airlock-system:airlock``).
        """
        return self._audit.records(user=user, since=since)

    @property
    def requests_served(self) -> int:
        """Requests received since the start, including those no longer kept."""
        return self._audit.count

    @property
    def webhook_calls(self) -> list[WebhookCall]:
        """Every AdmissionReview sent to a webhook, oldest first (what, where, and the outcome)."""
        return self._admission.webhook_calls

    def compact(self, keep: int = 0) -> None:
        """Forget old watch history, as etcd compaction does: older watches get 410 Gone."""
        self._log.compact(keep)

    def close_watches(self) -> None:
        """End all open watch streams (before shutting the HTTP server down)."""
        self._log.close()

    # -- HTTP entry point -----------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        received, seq = audit.now(), self._audit.next_seq()
        response = await self._answer(raw_request, seq)
        user = _user_of(raw_request)
        self._audit.record(seq, received, user, raw_request.method, raw_request.path, response.status)
        return response

    async def _answer(self, raw_request: aiohttp.web.BaseRequest, seq: int) -> aiohttp.web.StreamResponse:
        body = await raw_request.read()
        try:
            user = authenticate(raw_request.headers)
            route = parse_route(raw_request.path)
        except ApiError as error:
            return status_response(error)
        api = ApiRequest(
            raw_request, raw_request.method, raw_request.path, raw_request.query, raw_request.headers, body, user, route
        )
        try:
            data = json.loads(body) if body.strip() else None
        except ValueError:
            data = None
        request = kmock.Request(
            id=seq,
            method=raw_request.method,
            url=raw_request.url,
            params=dict(raw_request.query),
            headers=dict(raw_request.headers),
            cookies=dict(raw_request.cookies),
            body=body,
            text=body.decode("utf-8", "replace"),
            data=data,
            action=kmock_action(raw_request.method, route, api.watching),
            resource=kmock.resource(route.group, route.version, route.plural) if route and route.plural else None,
            namespace=route.namespace if route else None,
            name=route.name if route else None,
            subresource=(route.subresource or None) if route else None,
            raw_request=raw_request,
        )
        self._requests.append(request)
        user_token = _set_user(user)
        request_token = _current_request.set(api)
        validation_token = schemas.field_validation(raw_request.query.get("fieldValidation"))
        try:
            with collecting_warnings() as warnings:
                served = await self._handle(request)
            # As a real server: the decoder's unknown-field warnings, then admission's.
            texts = [*schemas.request_warnings(), *warnings]
            if texts and not served.prepared:
                for text in texts:
                    served.headers.add("Warning", warning_header(text))
            return served
        except Exception as error:
            # A bug in the emulator or in a test's reaction: answer 500 and keep it for assertions.
            self.internal_errors.append(error)
            logger.exception("sandbox API server failed on %s %s", raw_request.method, raw_request.path_qs)
            # kmock wraps failures of an already-started stream with that response as args[0].
            response = error.args[0] if error.args else None
            if isinstance(response, aiohttp.web.StreamResponse) and response.prepared:
                with contextlib.suppress(Exception):
                    await response.write_eof()
                return response
            return json_response(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "reason": "InternalError",
                    "message": f"sandbox internal error: {error!r}",
                    "details": {"causes": [{"message": traceback.format_exc()}]},
                    "code": 500,
                },
                500,
            )
        finally:
            schemas.reset_field_validation(validation_token)
            _current_request.reset(request_token)
            _reset_user(user_token)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        # kmock's dispatcher runs the test's own reactions first; ours is the last fallback.
        # Without any (the common case) it is skipped: it finds a request among the recorded
        # ones by scanning them, a cost per request that grows with the run.
        if len(self._payloads) == 1 and self._payloads[0] is self._own_fallback:
            api = _current_request.get()
            assert api is not None
            try:
                return await self._serve(api)
            except ApiError as error:
                return status_response(error)
        try:
            response: aiohttp.web.StreamResponse = await kmock.RawHandler._handle(self, request)
            return response
        except _Unclaimed:
            api = _current_request.get()
            assert api is not None
            try:
                return await self._serve(api)
            except ApiError as error:
                return status_response(error)

    # -- routing ----------------------------------------------------------------------------

    async def _serve(self, api: ApiRequest) -> aiohttp.web.StreamResponse:
        self._server_address = api.raw.host
        route = api.route
        if route is None:
            return self._serve_non_resource(api)
        if route.plural is None:
            if api.method != "GET":
                raise errors.method_not_allowed()
            if route.group == "":
                payload = discovery.resource_list(self._registry, "", route.version) if route.version == "v1" else None
            elif route.version:
                payload = discovery.resource_list(self._registry, route.group, route.version)
            else:
                payload = None
            if payload is None:
                raise errors.resource_not_found()
            return json_response(payload)

        rt = self._registry.get(route.group, route.version, route.plural)
        if rt is None or (route.namespace is not None and not rt.namespaced):
            raise errors.resource_not_found()
        if route.subresource and route.subresource not in rt.subresources:
            raise errors.resource_not_found()
        namespace = route.namespace if rt.namespaced else None

        if api.method == "GET":
            if api.watching:
                self._check_verb(rt, "watch")
                return await self._watch(api, rt, namespace, route.name)
            if route.name is None:
                self._check_verb(rt, "list")
                return self._list(api, rt, namespace)
            self._check_verb(rt, "get")
            obj = self._store.get(rt, namespace, route.name)
            if route.subresource == "scale":
                return json_response(scale_view(rt, obj))
            return objects_response(api, rt, obj)
        if api.method == "POST" and route.name is None:
            self._check_verb(rt, "create")
            return await self._create(api, rt, namespace)
        if api.method == "PUT" and route.name is not None:
            self._check_verb(rt, "update")
            return await self._replace(api, rt, namespace, route.name, route.subresource)
        if api.method == "PATCH" and route.name is not None:
            self._check_verb(rt, "patch")
            return await self._patch(api, rt, namespace, route.name, route.subresource)
        if api.method == "DELETE":
            if route.name is None:
                self._check_verb(rt, "deletecollection")
                return await self._delete_collection(api, rt, namespace)
            self._check_verb(rt, "delete")
            return await self._delete(api, rt, namespace, route.name)
        raise errors.method_not_allowed()

    def _serve_non_resource(self, api: ApiRequest) -> aiohttp.web.StreamResponse:
        path = api.path.rstrip("/") or "/"
        if api.method != "GET":
            raise errors.method_not_allowed()
        if path == "/":
            return json_response(discovery.root_paths(self._registry))
        if path == "/version":
            return json_response(_VERSION_INFO)
        if path in ("/healthz", "/livez", "/readyz"):
            return aiohttp.web.Response(text="ok", content_type="text/plain")
        if path == "/api":
            return json_response(discovery.core_versions(self._server_address))
        if path == "/apis":
            return json_response(discovery.group_list(self._registry))
        if path == "/openapi/v3":
            return json_response(openapi.index(self._registry, self._store.raw_schemas()))
        if path.startswith("/openapi/v3/") and (
            document := openapi.document_for_path(self._registry, self._store.raw_schemas(), path)
        ):
            return json_response(document)
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "apis" and (payload := discovery.group(self._registry, parts[1])):
            return json_response(payload)
        raise errors.resource_not_found()

    def _check_verb(self, rt: ResourceType, verb: str) -> None:
        if verb not in rt.verbs:
            raise errors.method_not_allowed(
                f"the server does not allow this method on the requested resource ({verb} {rt.qualified})"
            )

    # -- reads ------------------------------------------------------------------------------

    def _list(self, api: ApiRequest, rt: ResourceType, namespace: str | None) -> aiohttp.web.Response:
        try:
            limit = int(api.query.get("limit") or 0)
        except ValueError:
            raise errors.bad_request("limit must be an integer") from None
        result = self._store.list(
            rt,
            namespace,
            parse_label_selector(api.query.get("labelSelector")),
            parse_field_selector(api.query.get("fieldSelector")),
            limit=limit,
            continue_token=api.query.get("continue", ""),
        )
        return objects_response(api, rt, result, list_metadata=result["metadata"])

    async def _watch(
        self, api: ApiRequest, rt: ResourceType, namespace: str | None, name: str | None
    ) -> aiohttp.web.StreamResponse:
        return await watch_response(
            api,
            rt,
            namespace,
            name,
            self._store,
            is_served=lambda: self._registry.get(rt.group, rt.version, rt.plural) is not None,
            bookmark_interval=self.bookmark_interval,
        )

    # -- writes -----------------------------------------------------------------------------

    async def _create(self, api: ApiRequest, rt: ResourceType, namespace: str | None) -> aiohttp.web.Response:
        if rt.virtual:
            # kubectl sends this one as protobuf; only the caller's identity matters anyway.
            return json_response(self._self_subject_review(api), 201)
        body = api.json()
        obj = await self._store.create(rt, namespace, body, api.user, dry_run=api.dry_run)
        return json_response(obj, 201)

    def _self_subject_review(self, api: ApiRequest) -> JSONObject:
        return {
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": now()},
            "status": {"userInfo": api.user.to_dict()},
        }

    async def _replace(
        self, api: ApiRequest, rt: ResourceType, namespace: str | None, name: str, subresource: str
    ) -> aiohttp.web.Response:
        body = api.json()
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        metadata = body.get("metadata") or {}
        if metadata.get("name") not in (None, name):
            raise errors.bad_request(
                f"the name of the object ({metadata.get('name')}) does not match the name on the URL ({name})"
            )
        if rt.namespaced and metadata.get("namespace") not in (None, "", namespace):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        obj = await self._store.update(
            rt, namespace, name, subresource, lambda _old: copy.deepcopy(body), api.user, dry_run=api.dry_run
        )
        return json_response(obj)

    async def _patch(
        self, api: ApiRequest, rt: ResourceType, namespace: str | None, name: str, subresource: str
    ) -> aiohttp.web.Response:
        content_type = api.headers.get("Content-Type", "").split(";")[0].strip().lower()
        transform: Callable[[JSONObject], Any]
        if content_type == "application/apply-patch+yaml":
            return await self._apply(api, rt, namespace, name, subresource)
        patch = api.json()
        if content_type == "application/json-patch+json":
            transform = lambda doc: json_patch(doc, patch)  # noqa: E731
        elif content_type == "application/merge-patch+json":
            transform = lambda doc: merge_patch(doc, patch)  # noqa: E731
        elif content_type == "application/strategic-merge-patch+json":
            if rt.custom:
                raise errors.unsupported_media_type(
                    f"the body of the request was in an unknown format - accepted media types include: "
                    f"application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml "
                    f"(strategic merge patch is not supported for custom resources: {rt.qualified})"
                )
            if not isinstance(patch, dict):
                raise errors.unprocessable("a strategic merge patch must be a JSON object")
            transform = lambda doc: strategic_merge_patch(doc, patch)  # noqa: E731
        else:
            raise errors.unsupported_media_type(
                f"the body of the request was in an unknown format - accepted media types include: "
                f"application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, "
                f"application/strategic-merge-patch+json (got {content_type!r})"
            )
        if content_type != "application/json-patch+json" and patch is not None and not isinstance(patch, dict):
            raise errors.unprocessable("a merge patch must be a JSON object")
        obj = await self._store.update(rt, namespace, name, subresource, transform, api.user, dry_run=api.dry_run)
        return json_response(obj)

    async def _apply(
        self, api: ApiRequest, rt: ResourceType, namespace: str | None, name: str, subresource: str
    ) -> aiohttp.web.Response:
        try:
            body = yaml.safe_load(api.body.decode("utf-8")) if api.body.strip() else None
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise errors.bad_request(f"the apply patch is not valid YAML/JSON: {error}") from None
        if not isinstance(body, dict):
            raise errors.bad_request("an apply patch must be an object with apiVersion and kind")
        metadata = body.setdefault("metadata", {})
        if metadata.get("name") not in (None, name):
            raise errors.bad_request("the name of the applied object does not match the name on the URL")
        metadata["name"] = name
        if not subresource and self._store.current(rt, namespace, name) is None:
            obj = await self._store.create(rt, namespace, body, api.user, dry_run=api.dry_run)
            return json_response(obj, 201)
        merge = merge_patch if rt.custom else strategic_merge_patch
        obj = await self._store.update(
            rt, namespace, name, subresource, lambda doc: merge(doc, body), api.user, dry_run=api.dry_run
        )
        return json_response(obj)

    def _delete_options(self, api: ApiRequest) -> JSONObject:
        body = api.json()
        options: JSONObject = body if isinstance(body, dict) else {}
        for key in ("propagationPolicy", "gracePeriodSeconds"):
            if key in api.query:
                options.setdefault(key, api.query[key])
        if options.get("propagationPolicy") not in (None, "Background", "Foreground", "Orphan"):
            raise errors.bad_request(f"invalid propagationPolicy {options.get('propagationPolicy')!r}")
        return options

    async def _delete(
        self, api: ApiRequest, rt: ResourceType, namespace: str | None, name: str
    ) -> aiohttp.web.Response:
        obj, gone = await self._store.delete(
            rt, namespace, name, self._delete_options(api), api.user, dry_run=api.dry_run
        )
        # 202: accepted but not yet deleted (finalizers pending), as the real server answers.
        return json_response(obj, 200 if gone else 202)

    async def _delete_collection(
        self, api: ApiRequest, rt: ResourceType, namespace: str | None
    ) -> aiohttp.web.Response:
        options = self._delete_options(api)
        labels = parse_label_selector(api.query.get("labelSelector"))
        fields = parse_field_selector(api.query.get("fieldSelector"))
        listed = self._store.list(rt, namespace, labels, fields)
        deleted = []
        for obj in listed["items"]:
            metadata = obj["metadata"]
            with contextlib.suppress(ApiError):  # already gone: fine for a collection delete
                result, _ = await self._store.delete(
                    rt, metadata.get("namespace"), metadata["name"], options, api.user, dry_run=api.dry_run
                )
                deleted.append(result)
        return json_response({**listed, "items": deleted})


def _user_of(raw_request: aiohttp.web.BaseRequest) -> str:
    with contextlib.suppress(ApiError):
        return authenticate(raw_request.headers).username
    return ""


# -- running it -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunningServer:
    cluster: SandboxCluster
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextlib.asynccontextmanager
async def serve(
    cluster: SandboxCluster | None = None, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningServer]:
    """Serve ``cluster`` (a new one by default) over HTTP on the current event loop."""
    cluster = cluster if cluster is not None else SandboxCluster()
    async with cluster:
        server = aiohttp.web.Server(cluster, handler_cancellation=True, access_log=None)
        # Open watches are ended explicitly below, so a long grace period buys nothing.
        runner = aiohttp.web.ServerRunner(server, shutdown_timeout=1.0)
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, host, port)
        await site.start()
        actual_host, actual_port = runner.addresses[0][:2]
        try:
            yield RunningServer(cluster, actual_host, actual_port)
        finally:
            cluster.close_watches()
            await runner.cleanup()


def kubeconfig(url: str, token: str | None = None, namespace: str = "default") -> JSONObject:
    """A kubeconfig (as a dict) with one context, ``airlock-sandbox``, pointing at ``url``.

    client-go (kubectl) never sends credentials over plain HTTP, so a ``user:<name>[:<groups>]``
    token is mirrored into the user's ``as``/``as-groups`` impersonation fields, which it does
    send; Python clients (kubernetes, Kopf) send the token itself. Both name the same user.
    """
    user: JSONObject = {}
    if token:
        user["token"] = token
        parsed = parse_token(token)
        if parsed is not None:
            user["as"] = parsed[0]
            if parsed[1]:
                user["as-groups"] = parsed[1]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "airlock-sandbox", "cluster": {"server": url}}],
        "users": [{"name": "airlock-sandbox", "user": user}],
        "contexts": [
            {
                "name": "airlock-sandbox",
                "context": {"cluster": "airlock-sandbox", "user": "airlock-sandbox", "namespace": namespace},
            }
        ],
        "current-context": "airlock-sandbox",
        "preferences": {},
    }


def write_kubeconfig(path: str | Path, url: str, token: str | None = None, namespace: str = "default") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(kubeconfig(url, token, namespace), sort_keys=False))
    return path


class ClusterThread:
    """A :class:`SandboxCluster` served from a background thread with its own event loop.

    Synchronous code (pytest tests, the demo) talks to it over HTTP; in-process access
    to the cluster object goes through :meth:`call`, which runs on the cluster's loop,
    because the cluster is not thread-safe.
    """

    def __init__(self, cluster: SandboxCluster | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.cluster = cluster if cluster is not None else SandboxCluster()
        self._host, self._port = host, port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._running: RunningServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> Self:
        if self._thread is not None:
            raise RuntimeError("the cluster thread is already started")
        self._thread = threading.Thread(target=self._run, name="airlock-sandbox-cluster", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the sandbox cluster did not start in time")
        if self._error is not None:
            raise RuntimeError("the sandbox cluster failed to start") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stopping is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may have just finished
                self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the sandbox cluster thread did not stop in time")
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:
            self._error = error
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        async with serve(self.cluster, self._host, self._port) as running:
            self._running = running
            self._ready.set()
            await self._stopping.wait()

    @property
    def running(self) -> RunningServer:
        if self._running is None:
            raise RuntimeError("the sandbox cluster is not running")
        return self._running

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def port(self) -> int:
        return self.running.port

    def call(self, fn: Callable[..., T | Awaitable[T]], *args: Any, timeout: float = 10.0) -> T:
        """Run ``fn(*args)`` on the cluster's event loop and return its (awaited) result."""
        if self._loop is None:
            raise RuntimeError("the sandbox cluster is not running")

        async def invoke() -> T:
            result = fn(*args)
            if isinstance(result, Awaitable):
                return await result
            return result

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(timeout)

    def preload(self, *objs: JSONObject) -> list[JSONObject]:
        return [self.call(self.cluster.preload, obj) for obj in objs]

    def history(self, resource: str, namespace: str | None, name: str, *, since: int | None = None) -> list[JSONObject]:
        return self.call(lambda: self.cluster.history(resource, namespace, name, since=since))

    def get_object(self, resource: str, namespace: str | None, name: str) -> JSONObject | None:
        return self.call(self.cluster.get_object, resource, namespace, name)

    def audit(self, *, user: str | None = None, since: float | None = None) -> list[audit.AuditRecord]:
        """See :meth:`SandboxCluster.audit` (``since``: this process's ``time.monotonic()``)."""
        return self.call(lambda: self.cluster.audit(user=user, since=since))

    @property
    def resource_version(self) -> int:
        return self.call(lambda: self.cluster.resource_version)

    def write_kubeconfig(
        self,
        path: str | Path,
        token: str | None = None,
        user: str | None = None,
        groups: Iterable[str] = (),
        namespace: str = "default",
    ) -> Path:
        """Write a kubeconfig for this cluster; ``user``/``groups`` make the token for you."""
        if token is None and user is not None:
            token = token_for(user, list(groups))
        return write_kubeconfig(path, self.url, token, namespace)


async def _serve_forever(cluster: SandboxCluster, args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with serve(cluster, args.host, args.port) as running:
        if args.kubeconfig:
            write_kubeconfig(args.kubeconfig, running.url, args.token)
        logger.info(
            "airlock sandbox API server listening on %s%s",
            running.url,
            f" (kubeconfig: {args.kubeconfig})" if args.kubeconfig else "",
        )
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airlock.sandbox.cluster", description="Serve an in-memory Kubernetes API until stopped."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--kubeconfig", help="write a kubeconfig (context airlock-sandbox) to this file")
    parser.add_argument("--token", help="bearer token for the kubeconfig, e.g. user:alice:admins")
    parser.add_argument("--preload", action="append", default=[], help="YAML file of objects to load at start")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cluster = SandboxCluster()
    for path in args.preload:
        for doc in yaml.safe_load_all(Path(path).read_text()):
            if doc:
                cluster.preload(doc)
    asyncio.run(_serve_forever(cluster, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
