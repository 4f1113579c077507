"""Reroute through a weighted route: a Gateway API HTTPRoute or an Istio VirtualService (SPEC §8).

``reroute`` gives the fallback backend all the weight in every rule that names it
(weight 1 for an HTTPRoute, 100 for a VirtualService) and every other backend of
those rules weight 0.  Release puts back every weight exactly as it was: an absent
weight is removed again (the API's default applies, 1 for an HTTPRoute backendRef),
never replaced by an explicit one.  Rules that do not name the fallback are left
alone — they keep serving what they served.

The two kinds have the same shape (rules holding weighted backends), so one set of
functions serves both, parameterised by :class:`Shape`.  Everything here is pure:
views of a route body, the saved weights, and RFC 6902 JSON patches.  Each patch
``test``s the identity of every backend it re-weights, so a route that someone
reshaped between airlock's read and its write is refused by the API server (422)
instead of being patched in the wrong place; the caller reads again and retries.

What this module will NOT do: it never adds or removes backends or rules, never
checks that the fallback Service or InferencePool itself exists (only that the
route names it), and never touches a route's other fields (matches, filters).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airlock.api import annotations as keys
from airlock.api.aisystem import Fallback

GATEWAY_GROUP = "gateway.networking.k8s.io"


@dataclass(frozen=True)
class Shape:
    """Where a route kind keeps its weighted backends."""

    kind: str
    rules: str  # field of spec holding the rules
    backends: str  # field of a rule holding the weighted backends
    full: int  # the weight reroute gives the fallback


HTTP_ROUTE = Shape(kind="HTTPRoute", rules="rules", backends="backendRefs", full=1)
VIRTUAL_SERVICE = Shape(kind="VirtualService", rules="http", backends="route", full=100)


@dataclass(frozen=True)
class Backend:
    """One weighted backend of a rule: its identity, and its weight as written (None: absent)."""

    key: str
    weight: int | None
    guard: tuple[str, Any]  # (JSON pointer below the backend, value) that identifies it in a patch's `test`


@dataclass(frozen=True)
class RouteView:
    """The parts of a live route that reroute reads and writes."""

    shape: Shape
    name: str
    namespace: str
    rules: tuple[tuple[Backend, ...], ...]
    annotations: dict[str, str]


@dataclass(frozen=True)
class Matcher:
    """Which backends of a route are the fallback."""

    shape: Shape
    description: str  # for messages: "Service chatbot-fallback"
    group: str = ""
    kind: str = "Service"
    namespace: str = ""
    name: str = ""
    host: str = ""
    subset: str | None = None
    port: int | None = None

    def matches(self, backend: dict[str, Any], route_namespace: str) -> bool:
        if self.shape is VIRTUAL_SERVICE:
            dest = backend.get("destination") or {}
            port = (dest.get("port") or {}).get("number")
            return (
                dest.get("host") == self.host
                and dest.get("subset") == self.subset
                and (self.port is None or port == self.port)
            )
        return (
            (backend.get("group") or "") == self.group
            and (backend.get("kind") or "Service") == self.kind
            and (backend.get("namespace") or route_namespace) == self.namespace
            and backend.get("name") == self.name
            and (self.port is None or backend.get("port") == self.port)
        )


def shape_of(fallback: Fallback) -> Shape | None:
    """The route kind a fallback reroutes through, or None for a Service selector switch."""
    if fallback.http_route is not None:
        return HTTP_ROUTE
    if fallback.virtual_service is not None:
        return VIRTUAL_SERVICE
    return None


def matcher(fallback: Fallback, namespace: str) -> Matcher | None:
    """The fallback backend of ``fallback``'s route, as a matcher (None for a Service selector switch)."""
    if fallback.http_route is not None:
        ref = fallback.http_route.backend
        group = f"{ref.group}/" if ref.group else ""
        where = f" in namespace {ref.namespace}" if ref.namespace and ref.namespace != namespace else ""
        return Matcher(
            shape=HTTP_ROUTE,
            description=f"{group}{ref.kind} {ref.name}{where}",
            group=ref.group,
            kind=ref.kind,
            namespace=ref.namespace or namespace,
            name=ref.name,
            port=ref.port,
        )
    if fallback.virtual_service is not None:
        dest = fallback.virtual_service.destination
        return Matcher(
            shape=VIRTUAL_SERVICE,
            description=f"destination {dest.host}" + (f" subset {dest.subset}" if dest.subset else ""),
            host=dest.host,
            subset=dest.subset,
            port=dest.port,
        )
    return None


def _key(shape: Shape, backend: dict[str, Any], route_namespace: str) -> str:
    if shape is VIRTUAL_SERVICE:
        dest = backend.get("destination") or {}
        port = (dest.get("port") or {}).get("number")
        subset = f"/{dest.get('subset')}" if dest.get("subset") else ""
        return f"{dest.get('host')}{subset}" + (f":{port}" if port else "")
    group = backend.get("group") or ""
    kind = (backend.get("kind") or "Service") + (f".{group}" if group else "")
    port = backend.get("port")
    return f"{kind}/{backend.get('namespace') or route_namespace}/{backend.get('name')}" + (f":{port}" if port else "")


def _guard(shape: Shape, backend: dict[str, Any]) -> tuple[str, Any]:
    if shape is VIRTUAL_SERVICE:
        return ("/destination/host", (backend.get("destination") or {}).get("host"))
    return ("/name", backend.get("name"))


def _weight(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def view(shape: Shape, body: dict[str, Any]) -> RouteView:
    """Read a route body (as the API server returns it) into a :class:`RouteView`."""
    meta = body.get("metadata") or {}
    namespace = meta.get("namespace") or ""
    rules: list[tuple[Backend, ...]] = []
    for rule in (body.get("spec") or {}).get(shape.rules) or []:
        backends = (rule or {}).get(shape.backends) or []
        rules.append(
            tuple(
                Backend(key=_key(shape, b, namespace), weight=_weight(b.get("weight")), guard=_guard(shape, b))
                for b in backends
                if isinstance(b, dict)
            )
        )
    return RouteView(
        shape=shape,
        name=meta.get("name") or "",
        namespace=namespace,
        rules=tuple(rules),
        annotations=dict(meta.get("annotations") or {}),
    )


def _fallback_indexes(body_rules: list[Any], shape: Shape, fallback: Matcher, namespace: str) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for r, rule in enumerate(body_rules):
        for b, backend in enumerate((rule or {}).get(shape.backends) or []):
            if isinstance(backend, dict) and fallback.matches(backend, namespace):
                found.setdefault(r, []).append(b)
    return found


@dataclass(frozen=True)
class Located:
    """Where the fallback is in a route: rule index → backend index (exactly one per rule)."""

    view: RouteView
    fallback: Matcher
    at: dict[int, int]


def locate(shape: Shape, body: dict[str, Any], fallback: Matcher) -> Located | str:
    """Find the fallback in every rule that names it, or say (for humans) why reroute cannot use this route."""
    route = view(shape, body)
    rules = (body.get("spec") or {}).get(shape.rules) or []
    found = _fallback_indexes(rules, shape, fallback, route.namespace)
    if not found:
        names = sorted({b.key for rule in route.rules for b in rule})
        listed = ", ".join(names) if names else "none"
        return (
            f"fallback {fallback.description} is not a backend of {shape.kind} {route.name} "
            f"(its backends: {listed}); reroute cannot move traffic to it"
        )
    for rule, indexes in sorted(found.items()):
        if len(indexes) > 1:
            return (
                f"fallback {fallback.description} appears {len(indexes)} times in {shape.kind} {route.name} "
                f"rule {rule}: name its port in the fallback so reroute knows which one gets the weight"
            )
    return Located(view=route, fallback=fallback, at={rule: indexes[0] for rule, indexes in found.items()})


def _effective(shape: Shape, rule: tuple[Backend, ...], backend: Backend) -> int:
    if backend.weight is not None:
        return backend.weight
    if shape is HTTP_ROUTE:
        return 1  # Gateway API: weight defaults to 1
    return 100 if len(rule) == 1 else 0  # Istio: a lone destination takes everything


def rerouted(located: Located) -> bool:
    """Whether every rule naming the fallback sends all its traffic there (and nothing elsewhere)."""
    shape = located.view.shape
    for r, fb in located.at.items():
        rule = located.view.rules[r]
        for b, backend in enumerate(rule):
            want = shape.full if b == fb else 0
            if _effective(shape, rule, backend) != want:
                return False
    return True


def saved_state(located: Located, saved: dict[str, Any] | None) -> dict[str, Any]:
    """The route's saved weights: what was saved before stays, backends not seen before are added.

    Shape: ``{"kind", "name", "rules": [{"rule": i, "backends": [[key, weight or null], ...]}]}``,
    only for the rules that name the fallback (the others are never changed).  A backend
    added by GitOps while contained is saved with its weight as first seen, so release
    gives it back instead of leaving it at 0.
    """
    route = located.view
    result: dict[str, Any] = {
        "kind": route.shape.kind,
        "name": route.name,
        "rules": [dict(r, backends=[list(b) for b in r["backends"]]) for r in (saved or {}).get("rules") or []],
    }
    by_rule = {entry["rule"]: entry for entry in result["rules"]}
    for r in sorted(located.at):
        entry = by_rule.get(r)
        if entry is None:
            entry = {"rule": r, "backends": []}
            result["rules"].append(entry)
            by_rule[r] = entry
        known = [key for key, _ in entry["backends"]]
        for backend in route.rules[r]:
            if known.count(backend.key) < _count(route.rules[r], backend.key, upto=backend):
                entry["backends"].append([backend.key, backend.weight])
                known.append(backend.key)
    result["rules"].sort(key=lambda e: e["rule"])
    return result


def _count(rule: tuple[Backend, ...], key: str, *, upto: Backend) -> int:
    """How many backends with ``key`` there are in ``rule`` up to and including ``upto``."""
    n = 0
    for backend in rule:
        if backend.key == key:
            n += 1
        if backend is upto:
            break
    return n


def _weight_ops(shape: Shape, rule: int, index: int, backend: Backend, want: int | None) -> list[dict[str, Any]]:
    if backend.weight == want:
        return []
    base = f"/spec/{shape.rules}/{rule}/{shape.backends}/{index}"
    guard = {"op": "test", "path": base + backend.guard[0], "value": backend.guard[1]}
    if want is None:
        return [guard, {"op": "remove", "path": f"{base}/weight"}]
    return [guard, {"op": "replace" if backend.weight is not None else "add", "path": f"{base}/weight", "value": want}]


_MARKER_PATH = "/metadata/annotations/" + keys.CONTAINED_BY.replace("~", "~0").replace("/", "~1")


def reroute_patch(located: Located, system: str) -> list[dict[str, Any]]:
    """JSON patch: the fallback gets all the weight, every other backend of its rules 0, the route marked."""
    shape = located.view.shape
    ops: list[dict[str, Any]] = []
    for r, fb in sorted(located.at.items()):
        for b, backend in enumerate(located.view.rules[r]):
            ops += _weight_ops(shape, r, b, backend, shape.full if b == fb else 0)
    if located.view.annotations.get(keys.CONTAINED_BY) != system:
        if located.view.annotations:
            ops.append({"op": "add", "path": _MARKER_PATH, "value": system})
        else:
            ops.append({"op": "add", "path": "/metadata/annotations", "value": {keys.CONTAINED_BY: system}})
    return ops


@dataclass(frozen=True)
class Restore:
    """A restore patch, and what could not be put back because the route no longer has it."""

    patch: list[dict[str, Any]]
    missing: list[str]


def restore_patch(route: RouteView, saved: dict[str, Any]) -> Restore:
    """JSON patch putting back every saved weight (absent ones removed), and the marker removed.

    Backends are matched by rule index and identity (the n-th backend with a key in the
    saved rule is the n-th with that key in the live rule), so a backend moved within
    its rule is still restored; one that is gone is reported in ``missing``.
    """
    shape = route.shape
    ops: list[dict[str, Any]] = []
    missing: list[str] = []
    for entry in saved.get("rules") or []:
        r = int(entry["rule"])
        if r >= len(route.rules):
            missing.append(f"rule {r}")
            continue
        live = route.rules[r]
        used: set[int] = set()
        for key, weight in entry.get("backends") or []:
            index = next((i for i, b in enumerate(live) if b.key == key and i not in used), None)
            if index is None:
                missing.append(f"rule {r} backend {key}")
                continue
            used.add(index)
            ops += _weight_ops(shape, r, index, live[index], None if weight is None else int(weight))
    if set(route.annotations) == {keys.CONTAINED_BY}:
        ops.append({"op": "remove", "path": "/metadata/annotations"})  # airlock added the map: leave none
    elif keys.CONTAINED_BY in route.annotations:
        ops.append({"op": "remove", "path": _MARKER_PATH})
    return Restore(patch=ops, missing=missing)


def weights(route: RouteView) -> list[list[tuple[str, int | None]]]:
    """Every rule's (backend, weight as written) pairs: for messages and tests."""
    return [[(b.key, b.weight) for b in rule] for rule in route.rules]


# ------------------------------------------------------------------ ReferenceGrant


def needs_grant(fallback: Matcher, route_namespace: str) -> bool:
    """Gateway API: a backendRef into another namespace is honoured only with a ReferenceGrant there."""
    return fallback.shape is HTTP_ROUTE and fallback.namespace != route_namespace


def granted(grants: Iterable[dict[str, Any]], fallback: Matcher, route_namespace: str) -> bool:
    """Whether one of ``grants`` (ReferenceGrants in the fallback's namespace) lets the route refer to it."""
    for grant in grants:
        spec = grant.get("spec") or {}
        from_ok = any(
            f.get("group") == GATEWAY_GROUP and f.get("kind") == "HTTPRoute" and f.get("namespace") == route_namespace
            for f in spec.get("from") or []
        )
        to_ok = any(
            (t.get("group") or "") == fallback.group
            and t.get("kind") == fallback.kind
            and t.get("name") in (None, "", fallback.name)
            for t in spec.get("to") or []
        )
        if from_ok and to_ok:
            return True
    return False


def grant_problem(fallback: Matcher, route_name: str, route_namespace: str) -> str:
    group = fallback.group or '""'
    return (
        f"fallback {fallback.description} is in another namespace and no ReferenceGrant in {fallback.namespace} "
        f"lets HTTPRoute {route_namespace}/{route_name} refer to it (from: {GATEWAY_GROUP} HTTPRoute "
        f"{route_namespace}; to: group {group} kind {fallback.kind}): the gateway would refuse the reference "
        "and rerouted traffic would fail, so reroute was not applied"
    )
