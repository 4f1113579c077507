"""Admission webhooks (Mutating/ValidatingWebhookConfiguration), called over HTTPS.

What the API server's webhook plugins do (``k8s.io/apiserver/pkg/admission/plugin/webhook``):

* a webhook is called for a write if its ``namespaceSelector``, ``objectSelector`` and
  ``rules`` (with ``matchPolicy``) match and then every ``matchConditions`` CEL expression
  holds (an error in one obeys ``failurePolicy``); the admission configuration kinds are
  never sent;
* it gets an ``admission.k8s.io/v1`` AdmissionReview POSTed to ``clientConfig.url``, or to
  ``https://<service>.<namespace>.svc:<port><path>`` for ``clientConfig.service``. The
  sandbox has no cluster network, so a service is reached through the address it is mapped
  to (``SandboxCluster(service_endpoints={"name.namespace.svc:443": "127.0.0.1:9443"})``);
  the certificate is still verified against the service's DNS name and ``caBundle`` (the
  system trust store when empty), with ``?timeout=<n>s`` and ``timeoutSeconds`` (default 10);
* the response must be an AdmissionReview with the request's uid; ``allowed: false`` refuses
  the write as ``admission webhook "<name>" denied the request: <message>`` with the
  webhook's code (default 403) and reason; ``warnings`` become ``Warning`` headers; a
  mutating webhook may return a base64 ``JSONPatch``;
* a webhook that cannot be called, times out or answers nonsense fails the write with 500
  ``failed calling webhook`` under ``failurePolicy: Fail`` (the default) and is skipped
  under ``Ignore``; during a dry run only webhooks with ``sideEffects`` None or
  NoneOnDryRun are called (otherwise 400);
* mutating webhooks run in order (configurations sorted by name); if a later one changes
  the object, earlier ones with ``reinvocationPolicy: IfNeeded`` are called once more.

Every call is recorded (:class:`WebhookCall`) so tests can see what was sent where.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import ssl
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from airlock.sandbox import _k8s_cel as cel
from airlock.sandbox._k8s_errors import ApiError
from airlock.sandbox._k8s_matching import (
    Attributes,
    Match,
    SelectorError,
    namespace_selected,
    object_selected,
    rules_match,
    user_info,
    view,
)
from airlock.sandbox._k8s_objects import JSONObject
from airlock.sandbox._k8s_patches import PatchError, json_patch

DEFAULT_TIMEOUT = 10


@dataclass
class WebhookCall:
    """One AdmissionReview sent (for assertions): which webhook, to where, and what came of it."""

    webhook: str
    configuration: str
    url: str
    operation: str
    resource: str
    namespace: str
    name: str
    user: str
    dry_run: bool
    outcome: str = ""  # allowed, patched, denied, error: <why>
    seconds: float = 0.0


class CallFailed(Exception):
    """The webhook could not be called or gave no usable answer (``ErrCallingWebhook``)."""


@dataclass(frozen=True, eq=False)
class Webhook:
    """One webhook of a configuration, with its match conditions compiled."""

    configuration: str
    mutating: bool
    document: Mapping[str, Any]
    conditions: tuple[tuple[str, cel.Program], ...] = ()
    error: str | None = None  # a match condition that does not compile

    @property
    def name(self) -> str:
        return str(self.document.get("name", ""))

    @property
    def failure_policy(self) -> str:
        return str(self.document.get("failurePolicy") or "Fail")

    @property
    def timeout(self) -> int:
        value = self.document.get("timeoutSeconds")
        return int(value) if isinstance(value, int) and value > 0 else DEFAULT_TIMEOUT

    @property
    def reinvoke_if_needed(self) -> bool:
        return self.mutating and self.document.get("reinvocationPolicy") == "IfNeeded"


def compile_configuration(document: Mapping[str, Any]) -> list[Webhook]:
    """The webhooks of a Mutating/ValidatingWebhookConfiguration, in their order."""
    mutating = document.get("kind") == "MutatingWebhookConfiguration"
    name = str((document.get("metadata") or {}).get("name", ""))
    found: list[Webhook] = []
    for hook in document.get("webhooks") or []:
        conditions: list[tuple[str, cel.Program]] = []
        error: str | None = None
        for condition in hook.get("matchConditions") or []:
            try:
                conditions.append(
                    (str(condition.get("name", "")), cel.compile_expression(str(condition["expression"])))
                )
            except (cel.CelError, KeyError) as problem:
                error = problem.message if isinstance(problem, cel.CelError) else "a match condition has no expression"
        found.append(Webhook(name, mutating, hook, tuple(conditions), error))
    return found


# -- is the webhook called? ---------------------------------------------------------------------


def webhook_match(
    hook: Webhook, attributes: Attributes, namespace_object: Callable[[str], JSONObject | None]
) -> Match | None:
    """Selectors and rules (``ShouldCallHook`` before the match conditions); ApiError on a missing namespace."""
    if attributes.exempt:
        return None
    document = hook.document
    try:
        if not namespace_selected(document.get("namespaceSelector"), attributes, namespace_object):
            return None
        if not object_selected(document.get("objectSelector"), attributes):
            return None
    except SelectorError as error:
        raise ApiError(500, "InternalError", f"Internal error occurred: {error}", {}) from None
    return rules_match(document.get("rules") or [], document.get("matchPolicy") or "Equivalent", attributes)


def conditions_hold(hook: Webhook, attributes: Attributes, match: Match) -> bool:
    """The match conditions: any false -> not called; an error -> ``failurePolicy`` (raises CallFailed)."""
    if hook.error is not None:
        raise CallFailed(f"failed to compile match conditions: {hook.error}")
    if not hook.conditions:
        return True
    activation = attributes.cache.inputs(attributes, match)
    failures: list[str] = []
    for _, program in hook.conditions:
        try:
            if not attributes.cache.condition(program, attributes, match, activation):
                return False
        except cel.CelError as error:
            failures.append(error.message)
    if failures:
        raise CallFailed(failures[0] if len(failures) == 1 else f"[{', '.join(failures)}]")
    return True


# -- calling it ---------------------------------------------------------------------------------


def review(attributes: Attributes, match: Match, uid: str) -> JSONObject:
    """The AdmissionReview v1 request the API server POSTs."""
    ref = attributes.ref
    request: JSONObject = {
        "uid": uid,
        "kind": {"group": match.group, "version": match.version, "kind": match.kind},
        "resource": {"group": match.group, "version": match.version, "resource": match.resource},
        "requestKind": {"group": ref.group, "version": ref.version, "kind": ref.kind},
        "requestResource": {"group": ref.group, "version": ref.version, "resource": ref.resource},
        "name": ref.name,
        "operation": attributes.operation,
        "userInfo": {k: v for k, v in user_info(attributes.user).items() if v},
        "object": view(attributes.obj, match),
        "oldObject": view(attributes.old, match),
        "dryRun": attributes.dry_run,
        "options": attributes.options_object(),
    }
    if ref.subresource:
        request["subResource"] = ref.subresource
        request["requestSubResource"] = ref.subresource
    if attributes.namespace:
        request["namespace"] = attributes.namespace
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


@dataclass(frozen=True)
class Target:
    """Where a webhook is reached: the URL the API server names, and the address actually dialed."""

    url: str  # as the real server would name it (for messages)
    connect_url: str  # with the mapped address for a service
    server_hostname: str | None  # the name the certificate must carry


def target(hook: Webhook, service_endpoints: Mapping[str, str]) -> Target:
    client = hook.document.get("clientConfig") or {}
    if client.get("url"):
        url = str(client["url"])
        return Target(url, url, None)
    service = client.get("service")
    if not isinstance(service, Mapping) or not service.get("name") or not service.get("namespace"):
        raise CallFailed("clientConfig needs a url or a service")
    host = f"{service['name']}.{service['namespace']}.svc"
    port = int(service.get("port") or 443)
    path = str(service.get("path") or "/")
    url = f"https://{host}:{port}{path}"
    address = service_endpoints.get(f"{host}:{port}")
    if address is None:
        raise CallFailed(
            f'Post "{url}": service "{service["namespace"]}/{service["name"]}" port {port} has no address in this '
            "sandbox (SandboxCluster(service_endpoints={...}) maps services to addresses)"
        )
    return Target(url, f"https://{address}{path}", host)


def _nominal_url(client: Mapping[str, Any]) -> str:
    """The URL a real API server would call (for the record; empty if the clientConfig is malformed)."""
    if client.get("url"):
        return str(client["url"])
    service = client.get("service")
    if isinstance(service, Mapping) and service.get("name") and service.get("namespace"):
        port, path = int(service.get("port") or 443), str(service.get("path") or "/")
        return f"https://{service['name']}.{service['namespace']}.svc:{port}{path}"
    return ""


class WebhookClient:
    """Sends AdmissionReviews over HTTPS, verifying certificates as the API server does."""

    def __init__(self, service_endpoints: Mapping[str, str]) -> None:
        self.service_endpoints = service_endpoints
        self.calls: list[WebhookCall] = []
        self._contexts: dict[str, ssl.SSLContext] = {}

    def _context(self, ca_bundle: str) -> ssl.SSLContext:
        context = self._contexts.get(ca_bundle)
        if context is None:
            if ca_bundle:
                try:
                    pem = base64.b64decode(ca_bundle, validate=True).decode("ascii")
                    context = ssl.create_default_context(cadata=pem)
                except (binascii.Error, UnicodeDecodeError, ssl.SSLError, ValueError) as error:
                    raise CallFailed(f"could not get REST client: unable to load root certificates: {error}") from None
            else:
                context = ssl.create_default_context()
            self._contexts[ca_bundle] = context
        return context

    async def call(self, hook: Webhook, attributes: Attributes, match: Match) -> JSONObject:
        """POST the review; the verified response (``AdmissionReview.response``) or CallFailed."""
        uid = str(uuid.uuid4())
        body = review(attributes, match, uid)
        client_config = hook.document.get("clientConfig") or {}
        record = WebhookCall(
            webhook=hook.name,
            configuration=hook.configuration,
            url=_nominal_url(client_config),
            operation=attributes.operation,
            resource=str(attributes.ref),
            namespace=attributes.namespace,
            name=attributes.ref.name,
            user=attributes.user.username,
            dry_run=attributes.dry_run,
        )
        self.calls.append(record)
        started = time.monotonic()
        try:
            where = target(hook, self.service_endpoints)
            response = await self._post(hook, where, body)
            verified = _verify(response, uid, hook.mutating)
        except CallFailed as failure:
            record.outcome = f"error: {failure}"
            raise
        finally:
            record.seconds = time.monotonic() - started
        record.outcome = "allowed" if verified.get("allowed") else "denied"
        if verified.get("allowed") and verified.get("patch"):
            record.outcome = "patched"
        return verified

    async def _post(self, hook: Webhook, where: Target, body: JSONObject) -> Any:
        client = hook.document.get("clientConfig") or {}
        parsed = urllib.parse.urlsplit(where.connect_url)
        if parsed.scheme != "https":
            raise CallFailed(f'Post "{where.url}": webhook URLs must use https')
        context = self._context(str(client.get("caBundle") or ""))
        query = urllib.parse.urlencode([*urllib.parse.parse_qsl(parsed.query), ("timeout", f"{hook.timeout}s")])
        url = urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path or "/", query, ""))
        shown = f"{where.url}{'&' if '?' in where.url else '?'}timeout={hook.timeout}s"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=hook.timeout)) as session,
                session.post(
                    url,
                    data=json.dumps(body).encode(),
                    headers={"Content-Type": "application/json", "Accept": "application/json"},
                    ssl=context,
                    server_hostname=where.server_hostname,
                ) as answer,
            ):
                text = await answer.read()
                if answer.status != 200:
                    raise CallFailed(
                        f"failed to call webhook: the server responded with the status code {answer.status} "
                        f"({text[:200].decode('utf-8', 'replace')})"
                    )
        except TimeoutError:
            raise CallFailed(f'failed to call webhook: Post "{shown}": context deadline exceeded') from None
        except aiohttp.ClientConnectorCertificateError as error:
            raise CallFailed(
                f'failed to call webhook: Post "{shown}": tls: failed to verify certificate: {error.certificate_error}'
            ) from None
        except aiohttp.ClientSSLError as error:
            raise CallFailed(f'failed to call webhook: Post "{shown}": tls: {error}') from None
        except aiohttp.ClientConnectorError as error:
            raise CallFailed(
                f'failed to call webhook: Post "{shown}": dial tcp {parsed.netloc}: connect: {error.strerror or error}'
            ) from None
        except (aiohttp.ClientError, OSError) as error:
            raise CallFailed(f'failed to call webhook: Post "{shown}": {error}') from None
        try:
            return json.loads(text)
        except ValueError as error:
            raise CallFailed(f"received invalid webhook response: {error}") from None


def _verify(review_response: Any, uid: str, mutating: bool) -> JSONObject:
    """``VerifyAdmissionResponse`` for v1 reviews."""
    if not isinstance(review_response, dict):
        raise CallFailed("received invalid webhook response: not a JSON object")
    if (review_response.get("apiVersion"), review_response.get("kind")) != ("admission.k8s.io/v1", "AdmissionReview"):
        raise CallFailed(
            "received invalid webhook response: expected webhook response of admission.k8s.io/v1, "
            f"Kind=AdmissionReview, got {review_response.get('apiVersion')}, Kind={review_response.get('kind')}"
        )
    response = review_response.get("response")
    if not isinstance(response, dict):
        raise CallFailed("received invalid webhook response: webhook response was absent")
    if response.get("uid") != uid:
        raise CallFailed(
            f"received invalid webhook response: expected response.uid={uid!r}, got {response.get('uid')!r}"
        )
    patch, patch_type = response.get("patch"), response.get("patchType")
    if patch and not patch_type:
        raise CallFailed(
            "received invalid webhook response: webhook returned response.patch but not response.patchType"
        )
    if patch_type and not patch:
        raise CallFailed(
            "received invalid webhook response: webhook returned response.patchType but not response.patch"
        )
    if patch and not mutating:
        raise CallFailed("received invalid webhook response: validating webhooks may not return patches")
    if patch_type and patch_type != "JSONPatch":
        raise CallFailed(
            f"received invalid webhook response: webhook returned invalid response.patchType of {patch_type!r}"
        )
    return response


def denial(hook: Webhook, response: Mapping[str, Any]) -> ApiError:
    """A refusal in the API server's words, with the webhook's code (default 403) and reason."""
    found = response.get("status")
    status: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    denied_by = f'admission webhook "{hook.name}" denied the request'
    if status.get("message"):
        message = f"{denied_by}: {status['message']}"
    elif status.get("reason"):
        message = f"{denied_by}: {status['reason']}"
    else:
        message = f"{denied_by} without explanation"
    code = status.get("code")
    details = status.get("details") if isinstance(status.get("details"), dict) else None
    return ApiError(
        int(code) if isinstance(code, int) and code else 403, str(status.get("reason") or ""), message, details
    )


def call_failed(hook: Webhook, failure: CallFailed) -> ApiError:
    """Fail closed: 500, as the API server answers when a webhook cannot be called."""
    message = f'Internal error occurred: failed calling webhook "{hook.name}": {failure}'
    return ApiError(
        500, "InternalError", message, {"causes": [{"message": message[len("Internal error occurred: ") :]}]}
    )


def apply_patch(hook: Webhook, obj: JSONObject | None, response: Mapping[str, Any]) -> JSONObject | None:
    """The object after the webhook's JSONPatch (None: no patch)."""
    encoded = response.get("patch")
    if not encoded:
        return None
    try:
        operations = json.loads(base64.b64decode(str(encoded), validate=True))
    except (binascii.Error, ValueError) as error:
        raise CallFailed(f"received undecodable patch in webhook response: {error}") from None
    if not isinstance(operations, list):
        raise CallFailed("received undecodable patch in webhook response: not a list of operations")
    if not operations:
        return None
    if obj is None:
        raise ApiError(
            500,
            "InternalError",
            f'Internal error occurred: admission webhook "{hook.name}" attempted to modify the object, which is not '
            "supported for this operation",
            {},
        )
    try:
        patched = json_patch(obj, operations)
    except PatchError as error:
        raise ApiError(500, "InternalError", f"Internal error occurred: {error}", {}) from None
    if not isinstance(patched, dict):
        raise ApiError(500, "InternalError", "Internal error occurred: the patched object is not an object", {})
    return patched


@dataclass
class WebhookOutcome:
    obj: JSONObject | None
    warnings: list[str] = field(default_factory=list)


async def _invoke(
    client: WebhookClient,
    hook: Webhook,
    attributes: Attributes,
    namespace_object: Callable[[str], JSONObject | None],
    warnings: list[str],
) -> tuple[bool, JSONObject | None]:
    """Call one webhook if the write concerns it: (called, the patched object or None if unchanged).

    Raises ApiError for a refusal, or when a call fails under ``failurePolicy: Fail``.
    """
    match = webhook_match(hook, attributes, namespace_object)
    if match is None:
        return False, None
    try:
        if not conditions_hold(hook, attributes, match):
            return False, None
        if attributes.dry_run and hook.document.get("sideEffects") not in ("None", "NoneOnDryRun"):
            raise ApiError(400, "BadRequest", f'admission webhook "{hook.name}" does not support dry run', {})
        response = await client.call(hook, attributes, match)
        warnings.extend(str(w) for w in response.get("warnings") or [])
        if not response.get("allowed"):
            raise denial(hook, response)
        patched = apply_patch(hook, view(attributes.obj, match), response) if hook.mutating else None
    except CallFailed as failure:
        if hook.failure_policy == "Ignore":
            return True, None
        raise call_failed(hook, failure) from None
    if patched is None:
        return True, None
    if attributes.obj is not None:
        patched["apiVersion"] = attributes.obj.get("apiVersion")  # back to the version the write is stored in
    return True, (patched if patched != attributes.obj else None)


async def mutate(
    client: WebhookClient,
    hooks: Sequence[Webhook],
    attributes: Attributes,
    namespace_object: Callable[[str], JSONObject | None],
) -> WebhookOutcome:
    """Every mutating webhook in order, then once more the IfNeeded ones invoked before a later change."""
    outcome = WebhookOutcome(attributes.obj)
    invoked: list[Webhook] = []
    reinvoke: list[Webhook] = []
    for hook in hooks:
        called, patched = await _invoke(
            client, hook, attributes.with_object(outcome.obj), namespace_object, outcome.warnings
        )
        if patched is not None:
            outcome.obj = patched
            reinvoke.extend(h for h in invoked if h.reinvoke_if_needed and h not in reinvoke)
        if called:
            invoked.append(hook)
    for hook in hooks:
        if hook in reinvoke:
            _, patched = await _invoke(
                client, hook, attributes.with_object(outcome.obj), namespace_object, outcome.warnings
            )
            if patched is not None:
                outcome.obj = patched
    return outcome


async def validate(
    client: WebhookClient,
    hooks: Sequence[Webhook],
    attributes: Attributes,
    namespace_object: Callable[[str], JSONObject | None],
) -> list[str]:
    """Every validating webhook (the API server calls them in parallel; the first refusal in order wins)."""
    warnings: list[str] = []
    results = await asyncio.gather(
        *(_invoke(client, hook, attributes, namespace_object, warnings) for hook in hooks), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return warnings


def configuration_problem(document: Mapping[str, Any]) -> tuple[str, str] | None:
    """A (field, problem) that makes a webhook configuration invalid, as the API server refuses it at apply time."""
    mutating = document.get("kind") == "MutatingWebhookConfiguration"
    names: set[str] = set()
    for index, hook in enumerate(document.get("webhooks") or []):
        at = f"webhooks[{index}]"
        name = str(hook.get("name") or "")
        if len(name.split(".")) < 3:
            return (
                f"{at}.name",
                f'Invalid value: "{name}": should be a domain with at least three segments separated by dots',
            )
        if name in names:
            return f"{at}.name", f'Duplicate value: "{name}"'
        names.add(name)
        versions = hook.get("admissionReviewVersions") or []
        if not versions:
            return f"{at}.admissionReviewVersions", "Required value: must specify one of v1, v1beta1"
        if "v1" not in versions:
            return (
                f"{at}.admissionReviewVersions",
                "Unsupported value: the sandbox sends admission.k8s.io/v1 reviews only",
            )
        if hook.get("sideEffects") not in ("None", "NoneOnDryRun"):
            return (
                f"{at}.sideEffects",
                f'Unsupported value: "{hook.get("sideEffects")}": supported values: "None", "NoneOnDryRun"',
            )
        client = hook.get("clientConfig") or {}
        if bool(client.get("url")) == bool(client.get("service")):
            return f"{at}.clientConfig", "Required value: exactly one of url or service is required"
        if client.get("url"):
            parsed = urllib.parse.urlsplit(str(client["url"]))
            if parsed.scheme != "https" or not parsed.netloc or parsed.fragment or parsed.username:
                return (
                    f"{at}.clientConfig.url",
                    f'Invalid value: "{client["url"]}": must be an https URL without user or fragment',
                )
        for key, allowed in (
            ("failurePolicy", ("Fail", "Ignore")),
            ("matchPolicy", ("Exact", "Equivalent")),
            *((("reinvocationPolicy", ("Never", "IfNeeded")),) if mutating else ()),
        ):
            if hook.get(key) not in (None, *allowed):
                return f"{at}.{key}", f'Unsupported value: "{hook.get(key)}": supported values: {", ".join(allowed)}'
        timeout = hook.get("timeoutSeconds")
        if timeout is not None and not (isinstance(timeout, int) and 1 <= timeout <= 30):
            return (
                f"{at}.timeoutSeconds",
                f"Invalid value: {timeout}: the timeout value must be between 1 and 30 seconds",
            )
        for position, condition in enumerate(hook.get("matchConditions") or []):
            try:
                cel.compile_expression(str(condition.get("expression") or ""))
            except cel.CelError as error:
                return f"{at}.matchConditions[{position}].expression", f"Invalid value: {error.message}"
    return None
