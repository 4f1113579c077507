"""The write semantics of the sandbox API server: create, update, patch, delete.

kmock stores objects as dicts merged on PATCH and nothing more. Operators, though, are
written against the API server's contract, and their bugs hide in its corners: optimistic
concurrency (409 on a stale resourceVersion), status written only via ``/status``,
``metadata.generation`` bumps, finalizers keeping a deleted object alive, no-op writes
that produce no event. This module implements that contract on top of kmock's
``ObjectsArray`` (so kmock's per-object version history keeps working for assertions)
and the global :class:`~airlock.sandbox._k8s_watch.EventLog`.

All writes are serialised by one asyncio lock: admission (``_k8s_admission``) may await hooks
and webhooks, and a read-modify-write must not interleave with another write to the same object.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import kmock

from airlock.sandbox import _k8s_errors as errors
from airlock.sandbox._k8s_admission import Admission
from airlock.sandbox._k8s_identity import UserInfo
from airlock.sandbox._k8s_objects import (
    JSONObject,
    apply_defaults,
    crd_status,
    generated_name,
    meaningful,
    name_problem,
    now,
    present,
    scale_view,
    set_path,
    without_metadata_and_status,
)
from airlock.sandbox._k8s_patches import PatchError
from airlock.sandbox._k8s_registry import Registry, ResourceType, types_from_crd
from airlock.sandbox._k8s_selectors import FieldSelector, LabelSelector
from airlock.sandbox._k8s_watch import Change, EventLog

# Server-owned metadata that a client cannot set on create.
_SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "selfLink",
    "managedFields",
)
# Metadata that no update may change; restored from the stored object on every write.
_IMMUTABLE_METADATA = (
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)


def _is_crd(rt: ResourceType) -> bool:
    return (rt.group, rt.plural) == ("apiextensions.k8s.io", "customresourcedefinitions")


def _storage_resource(rt: ResourceType) -> kmock.resource:
    return kmock.resource(rt.group, rt.effective_storage_version, rt.plural)


class Store:
    def __init__(
        self,
        registry: Registry,
        objects: kmock.ObjectsArray,
        log: EventLog,
        admission: Admission,
    ) -> None:
        self.registry = registry
        self.objects = objects
        self.log = log
        self.admission = admission
        admission.attach(self)
        self.lock = asyncio.Lock()
        self._service_ips = 0

    # -- reading -------------------------------------------------------------------------

    def current(self, rt: ResourceType, namespace: str | None, name: str) -> JSONObject | None:
        key = (_storage_resource(rt), namespace if rt.namespaced else None, name)
        if key not in self.objects:
            return None
        obj = self.objects[key]
        return None if obj.deleted else obj.raw

    def iter_current(self, rt: ResourceType, namespace: str | None = None) -> Iterator[JSONObject]:
        storage = _storage_resource(rt)
        for (resource, obj_namespace, _), obj in list(self.objects.items()):
            if resource == storage and not obj.deleted and (namespace is None or obj_namespace == namespace):
                yield obj.raw

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> JSONObject:
        obj = self.current(rt, namespace, name)
        if obj is None:
            raise errors.not_found(rt.group, rt.plural, name)
        return present(rt, obj)

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        *,
        limit: int = 0,
        continue_token: str = "",
    ) -> JSONObject:
        list_rv = self.log.resource_version
        start: tuple[str, str] | None = None
        if continue_token:
            try:
                token = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                list_rv, start = int(token["rv"]), (token["start"][0], token["start"][1])
            except (ValueError, KeyError, TypeError, IndexError) as error:
                raise errors.bad_request(f"invalid continue token: {error}") from None
        items = sorted(
            (
                obj
                for obj in self.iter_current(rt, namespace)
                if labels.matches((obj.get("metadata") or {}).get("labels")) and fields.matches(obj)
            ),
            key=_sort_key,
        )
        if start is not None:
            items = [obj for obj in items if _sort_key(obj) > start]
        metadata: JSONObject = {"resourceVersion": str(list_rv)}
        if limit > 0 and len(items) > limit:
            rest = len(items) - limit
            items = items[:limit]
            last = _sort_key(items[-1])
            metadata["continue"] = base64.urlsafe_b64encode(
                json.dumps({"rv": list_rv, "start": list(last)}).encode()
            ).decode()
            metadata["remainingItemCount"] = rest
        return {
            "kind": rt.effective_list_kind,
            "apiVersion": rt.api_version,
            "metadata": metadata,
            "items": [present(rt, obj) for obj in items],
        }

    # -- writing -------------------------------------------------------------------------

    async def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        body: Any,
        user: UserInfo,
        *,
        dry_run: bool = False,
    ) -> JSONObject:
        async with self.lock:
            obj = self._prepare_create(rt, namespace, body)
            admitted = await self._admit("CREATE", rt, "", None, obj, user, dry_run=dry_run)
            if admitted is not obj:
                obj = self._reassert_identity(obj, admitted)
            if dry_run:
                return present(rt, obj)
            return present(rt, self._commit(rt, "ADDED", obj, None))

    def insert(self, rt: ResourceType, body: Any, *, keep_status: bool = True) -> JSONObject:
        """Create without admission or lock (preloading, built-in namespaces)."""
        namespace = (body.get("metadata") or {}).get("namespace") if rt.namespaced else None
        obj = self._prepare_create(rt, namespace or ("default" if rt.namespaced else None), body)
        if keep_status and "status" in body and not _is_crd(rt):
            obj["status"] = copy.deepcopy(body["status"])
        return present(rt, self._commit(rt, "ADDED", obj, None))

    def _prepare_create(self, rt: ResourceType, namespace: str | None, body: Any) -> JSONObject:
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        obj = copy.deepcopy(body)
        self._check_type(rt, obj)
        metadata = obj.get("metadata")
        if metadata is None:
            metadata = obj["metadata"] = {}
        if not isinstance(metadata, dict):
            raise errors.bad_request("metadata must be an object")
        if rt.namespaced:
            body_namespace = metadata.get("namespace")
            if namespace is None:
                namespace = body_namespace
            if not namespace:
                raise errors.bad_request("a namespaced object needs a namespace (in the URL or metadata)")
            if body_namespace and body_namespace != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        for key in _SERVER_METADATA:
            metadata.pop(key, None)

        name = metadata.get("name")
        if not name:
            prefix = metadata.get("generateName")
            if not prefix:
                raise errors.invalid(
                    rt.group, rt.kind, "", "metadata.name", "Required value: name or generateName is required"
                )
            for _ in range(100):
                name = generated_name(prefix)
                if self.current(rt, namespace, name) is None:
                    break
            metadata["name"] = name
        if not isinstance(name, str) or (problem := name_problem(rt, name)):
            raise errors.invalid(rt.group, rt.kind, str(name), "metadata.name", f"Invalid value: {problem}")
        if self.current(rt, namespace, name) is not None:
            raise errors.already_exists(rt.group, rt.plural, name)

        if rt.status:
            obj.pop("status", None)  # status is written only through /status
        apply_defaults(rt, obj, creating=True)
        if (rt.group, rt.plural) == ("", "services") and "clusterIP" not in obj["spec"]:
            self._service_ips += 1
            obj["spec"]["clusterIP"] = f"10.96.{self._service_ips // 250}.{self._service_ips % 250 + 1}"
        if _is_crd(rt):
            self._validate_crd(obj)
            obj["status"] = crd_status(obj)

        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = now()
        metadata["generation"] = 1
        return obj

    async def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        subresource: str,
        transform: Callable[[JSONObject], Any],
        user: UserInfo,
        *,
        dry_run: bool = False,
    ) -> JSONObject:
        """Read-modify-write of one object; ``transform`` maps the old view to the new one.

        The view is the object itself, or its Scale for the ``scale`` subresource. This is
        the single path of PUT and of all PATCH flavours, so they share every rule.
        """
        async with self.lock:
            old = self.current(rt, namespace, name)
            if old is None:
                raise errors.not_found(rt.group, rt.plural, name)
            old_rv = old["metadata"].get("resourceVersion")
            candidate = self._transform(rt, old, subresource, transform)

            self._check_type(rt, candidate)
            candidate["apiVersion"], candidate["kind"] = old.get("apiVersion"), old.get("kind")
            metadata = candidate["metadata"]
            for key in _IMMUTABLE_METADATA:
                if key in old["metadata"]:
                    metadata[key] = old["metadata"][key]
                else:
                    metadata.pop(key, None)
            metadata["resourceVersion"] = old_rv
            self._check_finalizers(rt, old, candidate)
            apply_defaults(rt, candidate, creating=False)
            if _is_crd(rt):
                self._validate_crd(candidate)
                if subresource != "status":
                    candidate["status"] = {**(old.get("status") or {}), **crd_status(candidate, old.get("status"))}
            if without_metadata_and_status(candidate) != without_metadata_and_status(old):
                metadata["generation"] = int(old["metadata"].get("generation") or 0) + 1

            admitted = await self._admit("UPDATE", rt, subresource, old, candidate, user, dry_run=dry_run)
            if admitted is not candidate:
                candidate = self._reassert_identity(candidate, admitted, old=old)

            final_metadata = candidate["metadata"]
            if meaningful(candidate) == meaningful(old) or dry_run:
                result = candidate
            elif final_metadata.get("deletionTimestamp") and not final_metadata.get("finalizers"):
                result = self._commit(rt, "DELETED", candidate, old)
                self._after_removal(rt, result)
            else:
                result = self._commit(rt, "MODIFIED", candidate, old)
            return scale_view(rt, result) if subresource == "scale" else present(rt, result)

    def _transform(
        self, rt: ResourceType, old: JSONObject, subresource: str, transform: Callable[[JSONObject], Any]
    ) -> JSONObject:
        old_rv = old["metadata"].get("resourceVersion")
        try:
            if subresource == "scale":
                assert rt.scale is not None
                view = transform(scale_view(rt, old))
            else:
                view = transform(copy.deepcopy(old))
        except PatchError as error:
            raise errors.unprocessable(str(error)) from None
        if not isinstance(view, dict) or not isinstance(view.get("metadata", {}), dict):
            raise errors.bad_request("the patched or submitted object must be a JSON object with metadata")
        view_rv = (view.get("metadata") or {}).get("resourceVersion")
        if view_rv not in (None, "") and str(view_rv) != old_rv:
            raise errors.conflict(rt.group, rt.plural, old["metadata"]["name"])

        if subresource == "scale":
            assert rt.scale is not None
            # Go clients omit a zero (`replicas,omitempty`), so absent means 0.
            replicas = (view.get("spec") or {}).get("replicas", 0)
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise errors.invalid(
                    "autoscaling",
                    "Scale",
                    old["metadata"]["name"],
                    "spec.replicas",
                    f"Invalid value: {replicas!r}: must be a non-negative integer",
                )
            candidate = copy.deepcopy(old)
            set_path(candidate, rt.scale.spec_replicas_path, replicas)
            return candidate
        if subresource == "status":
            candidate = copy.deepcopy(old)
            if view.get("status") is None:
                candidate.pop("status", None)
            else:
                candidate["status"] = view["status"]
            return candidate
        candidate = view
        candidate.setdefault("metadata", {})
        if rt.status:
            if "status" in old:
                candidate["status"] = copy.deepcopy(old["status"])
            else:
                candidate.pop("status", None)
        return candidate

    async def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        options: JSONObject,
        user: UserInfo,
        *,
        dry_run: bool = False,
    ) -> tuple[JSONObject, bool]:
        """Delete, or only mark for deletion if finalizers remain; tells which happened."""
        async with self.lock:
            old = self.current(rt, namespace, name)
            if old is None:
                raise errors.not_found(rt.group, rt.plural, name)
            preconditions = options.get("preconditions") or {}
            metadata = old["metadata"]
            if preconditions.get("uid") not in (None, "", metadata.get("uid")):
                raise errors.conflict(
                    rt.group,
                    rt.plural,
                    name,
                    f"Precondition failed: UID in precondition: "
                    f"{preconditions['uid']}, UID in object meta: {metadata.get('uid')}",
                )
            if preconditions.get("resourceVersion") not in (None, "", metadata.get("resourceVersion")):
                raise errors.conflict(
                    rt.group,
                    rt.plural,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: {preconditions['resourceVersion']}, "
                    f"ResourceVersion in object meta: {metadata.get('resourceVersion')}",
                )
            await self._admit("DELETE", rt, "", old, None, user, dry_run=dry_run)
            if dry_run:
                return present(rt, old), not metadata.get("finalizers")
            if metadata.get("finalizers"):
                if metadata.get("deletionTimestamp"):
                    return present(rt, old), False
                marked = copy.deepcopy(old)
                marked["metadata"]["deletionTimestamp"] = now()
                marked["metadata"]["deletionGracePeriodSeconds"] = 0
                return present(rt, self._commit(rt, "MODIFIED", marked, old)), False
            result = self._commit(rt, "DELETED", copy.deepcopy(old), old)
            self._after_removal(rt, result)
            return present(rt, result), True

    # -- internals -----------------------------------------------------------------------

    def _check_type(self, rt: ResourceType, obj: JSONObject) -> None:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if (
            api_version
            and api_version != rt.api_version
            and not (rt.custom and api_version.rpartition("/")[0] == rt.group)
        ):
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rt.api_version})"
            )
        if kind and kind != rt.kind:
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
        obj["apiVersion"] = f"{rt.group}/{rt.effective_storage_version}" if rt.group else rt.version
        obj["kind"] = rt.kind

    def _check_finalizers(self, rt: ResourceType, old: JSONObject, new: JSONObject) -> None:
        if not old["metadata"].get("deletionTimestamp"):
            return
        added = set(new["metadata"].get("finalizers") or []) - set(old["metadata"].get("finalizers") or [])
        if added:
            raise errors.invalid(
                rt.group,
                rt.kind,
                old["metadata"]["name"],
                "metadata.finalizers",
                "Forbidden: no new finalizers can be added if the object is being deleted, "
                f"found new finalizers {sorted(added)!r}",
            )

    def _validate_crd(self, crd: JSONObject) -> None:
        try:
            types_from_crd(crd)
        except ValueError as error:
            raise errors.invalid(
                "apiextensions.k8s.io",
                "CustomResourceDefinition",
                str(crd["metadata"].get("name")),
                "spec",
                str(error),
            ) from None

    def _reassert_identity(self, original: JSONObject, admitted: Any, old: JSONObject | None = None) -> JSONObject:
        # A mutating hook may change content, never identity or server-owned metadata.
        if not isinstance(admitted, dict):
            raise errors.forbidden("an admission hook returned a non-object")
        result = copy.deepcopy(admitted)
        result["apiVersion"], result["kind"] = original["apiVersion"], original["kind"]
        metadata = result.setdefault("metadata", {})
        for key in (*_IMMUTABLE_METADATA, "resourceVersion"):
            if key in original["metadata"]:
                metadata[key] = original["metadata"][key]
            else:
                metadata.pop(key, None)
        if old is not None and without_metadata_and_status(result) != without_metadata_and_status(old):
            metadata["generation"] = int(old["metadata"].get("generation") or 0) + 1
        return result

    async def _admit(
        self,
        operation: str,
        rt: ResourceType,
        subresource: str,
        old: JSONObject | None,
        new: JSONObject | None,
        user: UserInfo,
        *,
        dry_run: bool,
    ) -> JSONObject | None:
        """Admission (see ``_k8s_admission``): the object to store, or ApiError to refuse the write."""
        attributes = self.admission.attributes(operation, rt, subresource, old, new, user, dry_run=dry_run)
        mutated = await self.admission.mutate(attributes)
        # A real API server validates the object against its schema here, between the two phases.
        await self.admission.validate(attributes.with_object(mutated))
        return mutated

    def _commit(self, rt: ResourceType, event: str, obj: JSONObject, old: JSONObject | None) -> JSONObject:
        """Stamp a new resourceVersion, persist, and publish the change to watchers."""
        if rt.virtual:
            return obj
        metadata = obj["metadata"]
        namespace = metadata.get("namespace") if rt.namespaced else None
        name = metadata["name"]
        rv = self.log.next_rv()
        metadata["resourceVersion"] = str(rv)
        key = (_storage_resource(rt), namespace, name)
        if event == "DELETED":
            if old is not None and meaningful(obj) != meaningful(old):
                self.objects[key].history.append(obj)  # e.g. the last finalizer removed
            self.objects[key].delete()
        elif key in self.objects:
            if self.objects[key].deleted:
                self.objects[key].create(obj)
            else:
                self.objects[key].history.append(obj)
        else:
            self.objects[key] = obj
        self.log.append(Change(rv, rt.group, rt.plural, namespace, name, event, obj, old))
        if event != "DELETED" and _is_crd(rt):
            self._register_crd(obj, old)
        return obj

    def _register_crd(self, crd: JSONObject, old: JSONObject | None) -> None:
        if old is not None:
            old_spec = old.get("spec") or {}
            self.registry.unregister(old_spec.get("group", ""), (old_spec.get("names") or {}).get("plural", ""))
        for rt in types_from_crd(crd):
            self.registry.register(rt)
        self.log.notify()

    def _after_removal(self, rt: ResourceType, obj: JSONObject) -> None:
        if not _is_crd(rt):
            return
        # The real server deletes all instances (via a finalizer) before the CRD goes away.
        spec = obj.get("spec") or {}
        group, plural = spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
        served = self.registry.preferred(group, plural)
        if served is not None:
            for instance in list(self.iter_current(served)):
                self._commit(served, "DELETED", copy.deepcopy(instance), instance)
        self.registry.unregister(group, plural)
        self.log.notify()  # open watches of the removed resource end


def _sort_key(obj: JSONObject) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return (metadata.get("namespace") or "", metadata.get("name") or "")
