"""Carry out reroute through an HTTPRoute or a VirtualService: observe, move the weights, restore them.

The decisions (where the fallback is, which weights change, what to put back) are
``airlock.domain.routes``; this module reads the live route, checks what only the
cluster can tell (the kind is served at all, a ReferenceGrant for a backend in another
namespace) and sends the JSON patches.  The saved weights travel with the rest of the
saved state on the target (written before the route is touched), so a crash between
the save and the patch loses nothing.

A patch ``test``s every backend it re-weights; if someone reshaped the route in
between, the API server refuses it (422) and the route is read again, a bounded
number of times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airlock.adapters import kube
from airlock.api.aisystem import AISystemSpec
from airlock.domain import routes

# How often a patch refused because the route changed under it is retried from a fresh read.
RESHAPED_ATTEMPTS = 3


class RouteProblem(Exception):
    """Reroute through the route cannot be applied (missing, not served, fallback not in it, not granted)."""


@dataclass(frozen=True)
class Observation:
    """What reroute found: where the fallback is, or why it cannot be used."""

    located: routes.Located | None
    problem: str | None


def _resource(shape: routes.Shape) -> kube.Resource:
    return kube.ROUTES[shape.kind]


async def missing(client: kube.KubeClient, resource: kube.Resource, namespace: str, name: str) -> str:
    """Why a GET of ``resource`` answered 404: the object is absent, or its kind is not served at all."""
    if not await client.served(resource):
        return (
            f"{resource.kind} is not served by this cluster ({resource.plural}.{resource.group}/{resource.version} "
            "is not installed)"
        )
    return f"{resource.kind} {namespace}/{name} not found"


async def observe(client: kube.KubeClient, namespace: str, spec: AISystemSpec) -> Observation | None:
    """Read the fallback route (None if the fallback is not a route)."""
    if spec.fallback is None:
        return None
    shape = routes.shape_of(spec.fallback)
    matcher = routes.matcher(spec.fallback, namespace)
    if shape is None or matcher is None:
        return None
    name = spec.fallback.object_name
    try:
        body = await client.get(_resource(shape), namespace, name)
    except kube.NotFound:
        return Observation(None, await missing(client, _resource(shape), namespace, name))
    found = routes.locate(shape, body, matcher)
    if isinstance(found, str):
        return Observation(None, found)
    if routes.needs_grant(matcher, namespace):
        try:
            grants = await client.list(kube.REFERENCEGRANTS, matcher.namespace)
        except kube.NotFound:
            grants = []  # ReferenceGrant not served: nothing can grant the reference
        except kube.ApiError as exc:
            # e.g. 403 when the chart serves a list of namespaces that does not include the fallback's.
            return Observation(
                None,
                f"cannot read ReferenceGrants in {matcher.namespace} ({exc}), so reroute "
                f"cannot tell whether HTTPRoute {name} may refer to fallback {matcher.description}",
            )
        if not routes.granted(grants, matcher, namespace):
            return Observation(None, routes.grant_problem(matcher, name, namespace))
    return Observation(found, None)


async def reroute(
    client: kube.KubeClient, namespace: str, system: str, spec: AISystemSpec, located: routes.Located
) -> None:
    """Give the fallback all the weight (idempotent); re-read and retry if the route changed meanwhile."""
    shape = located.view.shape
    for attempt in range(1, RESHAPED_ATTEMPTS + 1):
        patch = routes.reroute_patch(located, system)
        if not patch:
            return
        try:
            await client.patch(_resource(shape), namespace, located.view.name, patch, content_type=kube.JSON_PATCH)
        except kube.ApiError as exc:
            if exc.status != 422 or attempt == RESHAPED_ATTEMPTS:
                raise
            fresh = await observe(client, namespace, spec)
            if fresh is None or fresh.located is None:
                raise RouteProblem(fresh.problem if fresh else "the fallback route is gone") from exc
            located = fresh.located
        else:
            return


async def restore(client: kube.KubeClient, namespace: str, saved: dict[str, Any]) -> list[str]:
    """Put back every saved weight exactly; return what could not be (backends the route no longer has)."""
    shape = routes.VIRTUAL_SERVICE if saved.get("kind") == routes.VIRTUAL_SERVICE.kind else routes.HTTP_ROUTE
    resource = _resource(shape)
    name = str(saved.get("name") or "")
    for attempt in range(1, RESHAPED_ATTEMPTS + 1):
        try:
            body = await client.get(resource, namespace, name)
        except kube.NotFound:
            raise RouteProblem(await missing(client, resource, namespace, name)) from None
        planned = routes.restore_patch(routes.view(shape, body), saved)
        if not planned.patch:
            return planned.missing
        try:
            await client.patch(resource, namespace, name, planned.patch, content_type=kube.JSON_PATCH)
        except kube.ApiError as exc:
            if exc.status != 422 or attempt == RESHAPED_ATTEMPTS:
                raise
        else:
            return planned.missing
    return []
