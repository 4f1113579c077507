"""HTTP plumbing of the sandbox API server: paths, requests, responses, watch streams.

kmock 0.8 parses ``/api/v1/namespaces`` (and ``/api/v1/namespaces/<name>``) as a
namespace without a resource and crashes; it also drops repeated headers, which
impersonation needs. So the sandbox parses requests itself: :func:`parse_route` knows
that ``namespaces`` is a cluster-scoped resource and where subresources go, and
:class:`ApiRequest` keeps the raw multi-valued query and headers.

Responses are JSON (kubectl, Kopf and client-go accept it even when they prefer protobuf),
or a ``meta.k8s.io/v1`` Table when kubectl asks for server-side printing. Watches stream
newline-delimited JSON events from the change log.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp.web
import kmock
from multidict import CIMultiDictProxy, MultiMapping

from airlock.sandbox import _k8s_errors as errors
from airlock.sandbox import _k8s_protobuf as protobuf
from airlock.sandbox import _k8s_tables as tables
from airlock.sandbox._k8s_errors import ApiError
from airlock.sandbox._k8s_identity import UserInfo
from airlock.sandbox._k8s_objects import JSONObject, present
from airlock.sandbox._k8s_registry import ResourceType
from airlock.sandbox._k8s_selectors import parse_field_selector, parse_label_selector
from airlock.sandbox._k8s_store import Store
from airlock.sandbox._k8s_watch import Change, follow


@dataclass(frozen=True)
class Route:
    """A parsed ``/api/...`` or ``/apis/...`` path."""

    group: str
    version: str
    namespace: str | None = None
    plural: str | None = None
    name: str | None = None
    subresource: str = ""
    legacy_watch: bool = False  # the deprecated /watch/ path prefix


def parse_route(path: str) -> Route | None:
    """Parse an API path; None for non-resource paths (/version, /healthz, /apis/<group>, ...)."""
    parts = [part for part in path.split("/") if part]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    legacy_watch = bool(rest) and rest[0] == "watch"
    if legacy_watch:
        rest = rest[1:]
    namespace: str | None = None
    # /namespaces/{ns}/{plural}/... is namespaced; /namespaces/{name}[/status|/finalize] is a Namespace.
    if len(rest) >= 3 and rest[0] == "namespaces" and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        raise errors.resource_not_found()
    plural = rest[0] if rest else None
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else ""
    return Route(group, version, namespace, plural, name, subresource, legacy_watch)


@dataclass(frozen=True)
class ApiRequest:
    raw: aiohttp.web.BaseRequest
    method: str
    path: str
    query: MultiMapping[str]
    headers: CIMultiDictProxy[str]
    body: bytes
    user: UserInfo
    route: Route | None

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("true", "1")

    def json(self) -> Any:
        if not self.body.strip():
            return None
        if "protobuf" in self.headers.get("Content-Type", ""):
            return protobuf.decode(self.body)
        try:
            return json.loads(self.body)
        except ValueError as error:
            raise errors.bad_request(f"the request body is not valid JSON: {error}") from None

    @property
    def dry_run(self) -> bool:
        return "All" in self.query.getall("dryRun", [])

    @property
    def watching(self) -> bool:
        return self.flag("watch") or bool(self.route and self.route.legacy_watch)


def json_response(payload: Any, status: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.Response(
        body=json.dumps(payload, separators=(",", ":")).encode(), status=status, content_type="application/json"
    )


def status_response(error: ApiError) -> aiohttp.web.Response:
    return json_response(error.to_status(), error.code)


def kmock_action(method: str, route: Route | None, watch: bool) -> kmock.action | None:
    """The kmock action of a request, so that kmock-style filters (``cluster['patch']``) match."""
    if route is None or route.plural is None:
        return None
    if method == "GET":
        return kmock.action.WATCH if watch else kmock.action.FETCH if route.name else kmock.action.LIST
    return {
        "POST": kmock.action.CREATE,
        "PATCH": kmock.action.UPDATE,
        "PUT": kmock.action.UPDATE,
        "DELETE": kmock.action.DELETE,
    }.get(method)


def objects_response(
    api: ApiRequest, rt: ResourceType, obj: JSONObject, *, list_metadata: JSONObject | None = None
) -> aiohttp.web.Response:
    """An object or a list, as JSON or as the Table kubectl asked for."""
    if tables.wants_table(api.headers.get("Accept", "")):
        items = obj["items"] if list_metadata is not None else [obj]
        include = api.query.get("includeObject", "PartialObjectMetadata")
        return json_response(tables.table(rt, items, include_object=include, list_metadata=list_metadata))
    return json_response(obj)


def _sort_key(obj: JSONObject) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return (metadata.get("namespace") or "", metadata.get("name") or "")


async def watch_response(
    api: ApiRequest,
    rt: ResourceType,
    namespace: str | None,
    name: str | None,
    store: Store,
    *,
    is_served: Callable[[], bool],
    bookmark_interval: float,
) -> aiohttp.web.StreamResponse:
    """Serve ``?watch=true``: initial ADDED events if asked, then changes from the log."""
    labels = parse_label_selector(api.query.get("labelSelector"))
    fields = parse_field_selector(api.query.get("fieldSelector"))
    as_table = tables.wants_table(api.headers.get("Accept", ""))
    include = api.query.get("includeObject", "PartialObjectMetadata")
    try:
        # 0 means "the server's default" on a real server; the sandbox's default is no timeout.
        timeout = float(api.query.get("timeoutSeconds") or 0) or None
    except ValueError:
        raise errors.bad_request("timeoutSeconds must be a number") from None
    raw_rv = api.query.get("resourceVersion", "")
    # No resourceVersion (or "0") means: the current state as ADDED events, then changes.
    initial = raw_rv in ("", "0") or api.flag("sendInitialEvents")
    try:
        since = int(raw_rv) if raw_rv not in ("", "0") else 0
    except ValueError:
        raise errors.bad_request(f"invalid resourceVersion {raw_rv!r}") from None

    def matches(obj: JSONObject | None) -> bool:
        if obj is None:
            return False
        metadata = obj.get("metadata") or {}
        return (
            (namespace is None or metadata.get("namespace") == namespace)
            and (name is None or metadata.get("name") == name)
            and labels.matches(metadata.get("labels"))
            and fields.matches(obj)
        )

    def render(event_type: str, obj: JSONObject) -> tuple[str, JSONObject]:
        shown = present(rt, obj)
        return event_type, tables.table(rt, [shown], include_object=include) if as_table else shown

    def select(change: Change) -> tuple[str, JSONObject] | None:
        if (change.group, change.plural) != (rt.group, rt.plural):
            return None
        now_in, was_in = matches(change.obj), matches(change.old)
        if change.type == "ADDED":
            return render("ADDED", change.obj) if now_in else None
        if change.type == "DELETED":
            return render("DELETED", change.obj) if now_in or was_in else None
        # Leaving or entering the selection is a DELETED or ADDED for this watcher.
        if now_in:
            return render("MODIFIED" if was_in else "ADDED", change.obj)
        return render("DELETED", change.obj) if was_in else None

    def bookmark(rv: int, *, initial_end: bool = False) -> JSONObject:
        metadata: JSONObject = {"resourceVersion": str(rv)}
        if initial_end:
            metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": metadata}

    response = aiohttp.web.StreamResponse(status=200)
    response.content_type = "application/json"
    response.enable_chunked_encoding()
    await response.prepare(api.raw)

    async def send(event: JSONObject) -> None:
        await response.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")

    try:
        if initial:
            # Snapshot and resourceVersion together (no await between), so no change is lost or doubled.
            snapshot = sorted(store.iter_current(rt, namespace), key=_sort_key)
            since = max(since, store.log.resource_version)
            for obj in snapshot:
                if matches(obj):
                    event_type, shown = render("ADDED", obj)
                    await send({"type": event_type, "object": shown})
            if api.flag("sendInitialEvents") and api.flag("allowWatchBookmarks"):
                await send({"type": "BOOKMARK", "object": bookmark(since, initial_end=True)})
        stream = follow(
            store.log,
            since,
            select,
            stop_after=timeout,
            bookmark=bookmark if api.flag("allowWatchBookmarks") else None,
            bookmark_interval=bookmark_interval,
            alive=is_served,
        )
        async for event in stream:
            await send(event)
        await response.write_eof()
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        pass  # the client went away; nothing to clean up
    return response
