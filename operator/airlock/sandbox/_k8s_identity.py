"""Who is calling the sandbox API server: bearer tokens and impersonation.

airlock's behaviour depends on the caller (break-glass users, the operator's own service
account, humans running ``kubectl --as``), so the sandbox needs identities without a PKI
or a token reviewer. A bearer token *names* the user instead:

* ``user:<name>`` → that user, in group ``system:authenticated``;
* ``user:<name>:<g1>,<g2>`` → plus the listed groups;
* names and groups with ``:`` or ``,`` (``system:serviceaccount:ns:sa``) are percent-encoded
  (``%3A``, ``%2C``): :func:`token_for` does it;
* no token → ``system:admin`` in ``system:masters`` (what a kubeconfig with client
  certificates of a fresh cluster gives you).

``Impersonate-User``/``Impersonate-Group``/``Impersonate-Uid``/``Impersonate-Extra-*``
headers (kubectl ``--as``/``--as-group``) then replace that identity. Anyone may
impersonate: the sandbox enforces no RBAC.

The identity of the request being served is available to any code on the request path
(admission hooks, kmock reactions) through :func:`current_user`.
"""

from __future__ import annotations

import contextvars
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDictProxy

from airlock.sandbox._k8s_errors import bad_request, unauthorized

AUTHENTICATED = "system:authenticated"


@dataclass(frozen=True)
class UserInfo:
    username: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``userInfo`` shape of SelfSubjectReview and admission reviews."""
        info: dict[str, Any] = {"username": self.username, "groups": list(self.groups)}
        if self.uid:
            info["uid"] = self.uid
        if self.extra:
            info["extra"] = {key: list(values) for key, values in self.extra.items()}
        return info


ADMIN = UserInfo("system:admin", ("system:masters", AUTHENTICATED))

_current: contextvars.ContextVar[UserInfo | None] = contextvars.ContextVar("sandbox_user", default=None)


def current_user() -> UserInfo | None:
    """The identity of the API request being handled in this task, if any."""
    return _current.get()


def set_current_user(user: UserInfo | None) -> contextvars.Token[UserInfo | None]:
    return _current.set(user)


def reset_current_user(token: contextvars.Token[UserInfo | None]) -> None:
    _current.reset(token)


def _encode(part: str) -> str:
    return part.replace("%", "%25").replace(":", "%3A").replace(",", "%2C")


def token_for(username: str, groups: tuple[str, ...] | list[str] = ()) -> str:
    """The bearer token that makes the sandbox see the caller as ``username`` in ``groups``."""
    name = _encode(username)
    return f"user:{name}:{','.join(_encode(g) for g in groups)}" if groups else f"user:{name}"


def parse_token(token: str) -> tuple[str, list[str]] | None:
    """(username, groups) of a ``user:<name>[:<groups>]`` token, or None if it is not one."""
    parts = token.split(":")
    if len(parts) not in (2, 3) or parts[0] != "user" or not parts[1]:
        return None
    groups = [urllib.parse.unquote(g) for g in (parts[2].split(",") if len(parts) == 3 else []) if g]
    return urllib.parse.unquote(parts[1]), groups


def _with_authenticated(groups: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*groups, AUTHENTICATED]))


def authenticate(headers: CIMultiDictProxy[str]) -> UserInfo:
    """Resolve the caller from ``Authorization`` and the impersonation headers."""
    user = ADMIN
    authorization = headers.get("Authorization", "").strip()
    if authorization:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token.startswith("user:") or len(token.split(":")) > 3:
            raise unauthorized("the sandbox accepts only bearer tokens of the form user:<name>[:<group>,<group>...]")
        parsed = parse_token(token)
        if parsed is None:
            raise unauthorized("the bearer token names no user")
        name, groups = parsed
        user = UserInfo(name, _with_authenticated(groups))

    impersonated = headers.get("Impersonate-User")
    if impersonated is not None:
        groups = [g for value in headers.getall("Impersonate-Group", []) for g in [value.strip()] if g]
        extra: dict[str, tuple[str, ...]] = {}
        for key, value in headers.items():
            if key.lower().startswith("impersonate-extra-"):
                name = key[len("impersonate-extra-") :].lower()
                extra[name] = (*extra.get(name, ()), value)
        anonymous = impersonated == "system:anonymous"
        user = UserInfo(
            impersonated,
            tuple(groups) if anonymous else _with_authenticated(groups),
            uid=headers.get("Impersonate-Uid", ""),
            extra=extra,
        )
    elif headers.get("Impersonate-Group"):
        raise bad_request("Impersonate-Group requires Impersonate-User")
    return user
