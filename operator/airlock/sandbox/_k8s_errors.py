"""Kubernetes-shaped API errors for the sandbox API server.

Clients branch on the HTTP code *and* on the ``Status`` body: kubectl prints
``Error from server (NotFound): deployments.apps "web" not found`` from ``reason`` and
``message``, Kopf maps 404/409/422 to distinct exception classes, client-go retries on
409 ``Conflict``. So every failure the emulator reports goes through :class:`ApiError`,
which renders exactly the ``Status`` object a real API server would send.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A failure that is answered with a ``v1.Status`` body and its HTTP code."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            status["details"] = self.details
        return status


def _details(group: str, plural: str, name: str | None) -> dict[str, Any]:
    # Real servers put the *plural* into details.kind for these errors; clients rely on it.
    details: dict[str, Any] = {"kind": plural}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    return details


def _qualified(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(group: str, plural: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{_qualified(group, plural)} "{name}" not found', _details(group, plural, name))


def resource_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(group: str, plural: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{_qualified(group, plural)} "{name}" already exists',
        _details(group, plural, name),
    )


def conflict(group: str, plural: str, name: str, why: str | None = None) -> ApiError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(group, plural)} "{name}": {why}',
        _details(group, plural, name),
    )


def invalid(group: str, kind: str, name: str, field: str, problem: str) -> ApiError:
    details = {"name": name, "group": group, "kind": kind, "causes": [{"field": field, "message": problem}]}
    if not group:
        del details["group"]
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {field}: {problem}', details)


def unprocessable(message: str) -> ApiError:
    # What the API server answers when a patch cannot be applied (e.g. a failed JSON-patch `test`).
    return ApiError(422, "Invalid", message, {})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unauthorized(message: str = "Unauthorized") -> ApiError:
    return ApiError(401, "Unauthorized", message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, "Forbidden", message, {})


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> ApiError:
    return ApiError(405, "MethodNotAllowed", message, {})


def unsupported_media_type(message: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType", message, {})


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def invalid_fields(group: str, kind: str, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 for a custom resource that fails its schema: ``causes`` are (field, reason, detail).

    Worded as the API server words it: ``AISystem.airlock.dev "x" is invalid: spec.mode: ...``,
    several errors in brackets.
    """
    qualified = f"{kind}.{group}" if group else kind
    rendered = [f"{field}: {detail}" if field else detail for field, _, detail in causes]
    summary = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    details: dict[str, Any] = {
        "name": name,
        "group": group,
        "kind": kind,
        "causes": [{"reason": reason, "message": detail, "field": field} for field, reason, detail in causes],
    }
    if not group:
        del details["group"]
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {summary}', details)
