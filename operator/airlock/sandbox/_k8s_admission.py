"""The admission chain of the sandbox API server: what every write passes before it is stored.

In the order of a real API server::

    mutating   Python hooks (SandboxCluster.admission), then mutating webhooks
               (reinvoked once if a later one changed the object)
    [schema validation of custom resources belongs between the two phases]
    validating built-in checks of the admission configuration objects themselves,
               ValidatingAdmissionPolicies with their bindings, then validating webhooks

The configuration (policies, bindings, webhook configurations) is read from the sandbox's
own store, as the real server reads it from its informers, and compiled once per stored
generation: the chain follows the store's change log and rebuilds only after a write to
``admissionregistration.k8s.io`` (params are re-listed only after a write to their kind).
Warnings (``Warn`` bindings, webhook ``warnings``) become ``Warning`` response headers.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any, Protocol

from airlock.sandbox import _k8s_errors as errors
from airlock.sandbox import _k8s_vap as vap
from airlock.sandbox import _k8s_webhooks as webhooks
from airlock.sandbox._k8s_errors import ApiError
from airlock.sandbox._k8s_identity import UserInfo
from airlock.sandbox._k8s_matching import Attributes, Equivalent, ResourceRef
from airlock.sandbox._k8s_objects import JSONObject
from airlock.sandbox._k8s_registry import Registry, ResourceType
from airlock.sandbox._k8s_watch import EventLog

__all__ = ["Admission", "AdmissionDenied", "AdmissionHook", "Attributes", "ResourceRef", "warning_header"]

logger = logging.getLogger("airlock.sandbox.cluster")

REGISTRATION = "admissionregistration.k8s.io"
_POLICIES, _BINDINGS = "validatingadmissionpolicies", "validatingadmissionpolicybindings"
_MUTATING, _VALIDATING = "mutatingwebhookconfigurations", "validatingwebhookconfigurations"


class AdmissionDenied(Exception):
    """Raised by an admission hook to reject a write (403 Forbidden unless told otherwise)."""

    def __init__(self, message: str, *, code: int = 403, reason: str = "Forbidden") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason


# hook(operation, resource, old, new, user) -> a replacement for `new`, or None to keep it.
# Operations: CREATE, UPDATE, DELETE. `old` is None on CREATE, `new` is None on DELETE.
AdmissionHook = Callable[
    [str, ResourceRef, JSONObject | None, JSONObject | None, UserInfo],
    Awaitable[JSONObject | None] | JSONObject | None,
]


# -- warnings -----------------------------------------------------------------------------------

_warnings: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("sandbox_warnings", default=None)


@contextlib.contextmanager
def collecting_warnings() -> Iterator[list[str]]:
    """Collect the warnings raised while serving one request (the HTTP layer adds the headers)."""
    collected: list[str] = []
    token = _warnings.set(collected)
    try:
        yield collected
    finally:
        _warnings.reset(token)


def add_warnings(texts: list[str]) -> None:
    collected = _warnings.get()
    if collected is not None:
        collected.extend(t for t in texts if t not in collected)


def warning_header(text: str) -> str:
    """A ``Warning`` header value as the API server writes it (code 299, agent ``-``)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


# -- the chain ----------------------------------------------------------------------------------


class ObjectStore(Protocol):
    """What the chain reads from the sandbox's store."""

    registry: Registry
    log: EventLog

    def current(self, rt: ResourceType, namespace: str | None, name: str) -> JSONObject | None: ...

    def iter_current(self, rt: ResourceType, namespace: str | None = None) -> Iterator[JSONObject]: ...


class Admission:
    """Python hooks, webhooks and ValidatingAdmissionPolicies for one sandbox store."""

    def __init__(self, hooks: list[AdmissionHook], service_endpoints: dict[str, str] | None = None) -> None:
        self.hooks = hooks  # SandboxCluster.admission: tests append and remove hooks at run time
        self.client = webhooks.WebhookClient(service_endpoints if service_endpoints is not None else {})
        self._store: ObjectStore | None = None
        self._cursor = 0
        self._configured = False
        self._policies: list[tuple[vap.CompiledPolicy, list[JSONObject]]] = []
        self._compiled: dict[tuple[str, str], vap.CompiledPolicy] = {}
        self._mutating: list[webhooks.Webhook] = []
        self._validating: list[webhooks.Webhook] = []
        self._webhook_cache: dict[tuple[str, str], list[webhooks.Webhook]] = {}
        self._listings: dict[tuple[str, str], list[JSONObject]] = {}

    def attach(self, store: ObjectStore) -> None:
        self._store = store

    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            raise RuntimeError("the admission chain is not attached to a store")
        return self._store

    @property
    def webhook_calls(self) -> list[webhooks.WebhookCall]:
        return self.client.calls

    # -- entry points (called by the store, under its write lock) ---------------------------

    def attributes(
        self,
        operation: str,
        rt: ResourceType,
        subresource: str,
        old: JSONObject | None,
        new: JSONObject | None,
        user: UserInfo,
        *,
        dry_run: bool = False,
    ) -> Attributes:
        source = new if new is not None else old
        assert source is not None
        metadata = source.get("metadata") or {}
        name = metadata.get("name", "")
        # As on a real server, a Namespace's own writes carry its name as their namespace.
        namespace = name if (rt.group, rt.plural) == ("", "namespaces") else metadata.get("namespace")
        ref = ResourceRef(rt.group, rt.version, rt.plural, subresource, rt.kind, namespace, name)
        return Attributes(operation, ref, new, old, user, namespaced=rt.namespaced, dry_run=dry_run)

    async def mutate(self, attributes: Attributes) -> JSONObject | None:
        """Mutating admission: the object to store (``attributes.obj`` itself when nothing changed)."""
        current = await self._run_hooks(attributes)
        self._refresh()
        if not self._mutating or attributes.operation not in ("CREATE", "UPDATE", "DELETE"):
            return current
        outcome = await webhooks.mutate(
            self.client, self._mutating, self._with_equivalents(attributes.with_object(current)), self._namespace
        )
        add_warnings(outcome.warnings)
        return outcome.obj

    async def validate(self, attributes: Attributes) -> None:
        """Validating admission of the (mutated) object: raises ApiError to refuse the write."""
        self._check_configuration(attributes)
        self._refresh()
        if not self._policies and not self._validating:
            return
        attributes = self._with_equivalents(attributes)
        if self._policies:
            outcome = vap.evaluate(self._policies, attributes, _Params(self), self._namespace)
            add_warnings(outcome.warnings)
            if outcome.denial is not None:
                raise outcome.denial
        if self._validating:
            add_warnings(await webhooks.validate(self.client, self._validating, attributes, self._namespace))

    # -- Python hooks ------------------------------------------------------------------------------

    async def _run_hooks(self, attributes: Attributes) -> JSONObject | None:
        current = attributes.obj
        for hook in list(self.hooks):
            try:
                result = hook(
                    attributes.operation,
                    attributes.ref,
                    copy.deepcopy(attributes.old),
                    copy.deepcopy(current),
                    attributes.user,
                )
                if inspect.isawaitable(result):
                    result = await result
            except AdmissionDenied as denial:
                raise errors.ApiError(denial.code, denial.reason, denial.message, {}) from None
            except ApiError:
                raise
            except Exception as error:
                logger.exception("admission hook %r failed on %s %s", hook, attributes.operation, attributes.ref)
                raise errors.forbidden(f"admission hook {getattr(hook, '__name__', hook)!s} failed: {error}") from None
            if result is not None and attributes.operation != "DELETE":
                current = result
        return current

    # -- configuration -----------------------------------------------------------------------------

    def _check_configuration(self, attributes: Attributes) -> None:
        """The API server refuses a malformed policy or webhook configuration at apply time."""
        ref = attributes.ref
        if ref.group != REGISTRATION or ref.subresource or attributes.obj is None:
            return
        if ref.resource in (_POLICIES, _BINDINGS):
            problem = vap.configuration_problem(ref.kind, attributes.obj)
        elif ref.resource in (_MUTATING, _VALIDATING):
            problem = webhooks.configuration_problem(attributes.obj)
        else:
            problem = None
        if problem is not None:
            field, message = problem
            raise errors.invalid(ref.group, ref.kind, ref.name, field, message)

    def _refresh(self) -> None:
        """Follow the change log: rebuild what a write since the last look made stale."""
        store = self.store
        try:
            changed = {(change.group, change.plural) for change in store.log.since(self._cursor)}
            everything = False
        except ApiError:  # the log was compacted past our cursor
            changed, everything = set(), True
        self._cursor = store.log.resource_version
        if everything:
            self._listings.clear()
        else:
            for key in changed:
                self._listings.pop(key, None)
        if everything or not self._configured or any(group == REGISTRATION for group, _ in changed):
            self._configure()

    def _objects(self, plural: str) -> list[JSONObject]:
        rt = self.store.registry.get(REGISTRATION, "v1", plural)
        if rt is None:
            return []
        return sorted(self.store.iter_current(rt), key=lambda o: str(o["metadata"].get("name", "")))

    def _configure(self) -> None:
        compiled: dict[tuple[str, str], vap.CompiledPolicy] = {}
        bindings = self._objects(_BINDINGS)
        policies: list[tuple[vap.CompiledPolicy, list[JSONObject]]] = []
        for document in self._objects(_POLICIES):
            key = _generation(document)
            policy = self._compiled.get(key) or vap.CompiledPolicy(document)
            compiled[key] = policy
            bound = [b for b in bindings if (b.get("spec") or {}).get("policyName") == policy.name]
            if bound:
                policies.append((policy, bound))
        self._compiled, self._policies = compiled, policies

        cache: dict[tuple[str, str], list[webhooks.Webhook]] = {}
        for plural in (_MUTATING, _VALIDATING):
            found: list[webhooks.Webhook] = []
            for document in self._objects(plural):
                key = _generation(document)
                cache[key] = self._webhook_cache.get(key) or webhooks.compile_configuration(document)
                found.extend(cache[key])
            if plural == _MUTATING:
                self._mutating = found
            else:
                self._validating = found
        self._webhook_cache = cache
        self._configured = True

    # -- what policies and webhooks read ----------------------------------------------------------

    def _namespace(self, name: str) -> JSONObject | None:
        rt = self.store.registry.get("", "v1", "namespaces")
        return self.store.current(rt, None, name) if rt is not None and name else None

    def _with_equivalents(self, attributes: Attributes) -> Attributes:
        ref, registry = attributes.ref, self.store.registry
        found = []
        for version in registry.versions(ref.group):
            rt = registry.get(ref.group, version, ref.resource)
            if rt is not None:
                found.append(Equivalent(rt.group, rt.version, rt.plural, rt.kind))
        return replace(attributes, equivalents=tuple(found))

    def listing(self, rt: ResourceType) -> list[JSONObject]:
        """Every object of a resource, re-read only after a write to it."""
        key = (rt.group, rt.plural)
        if key not in self._listings:
            self._listings[key] = sorted(
                self.store.iter_current(rt),
                key=lambda o: (str(o["metadata"].get("namespace") or ""), str(o["metadata"].get("name", ""))),
            )
        return self._listings[key]


class _Params:
    """Params of ValidatingAdmissionPolicies, from the store (``vap.ParamSource``)."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission

    def _type(self, api_version: str, kind: str) -> ResourceType | None:
        return self.admission.store.registry.by_kind(api_version, kind)

    def param_scope(self, api_version: str, kind: str) -> bool | None:
        rt = self._type(api_version, kind)
        return None if rt is None else rt.namespaced

    def param_objects(self, api_version: str, kind: str, namespace: str | None) -> list[JSONObject]:
        rt = self._type(api_version, kind)
        if rt is None:
            return []
        return [
            {**obj, "apiVersion": api_version}
            for obj in self.admission.listing(rt)
            if namespace is None or obj["metadata"].get("namespace") == namespace
        ]


def _generation(document: Mapping[str, Any]) -> tuple[str, str]:
    metadata = document.get("metadata") or {}
    return str(metadata.get("uid", "")), str(metadata.get("resourceVersion", ""))
