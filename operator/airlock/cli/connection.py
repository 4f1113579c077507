"""What every cluster-facing verb shares: the cluster flags, the client, and who the caller is.

``--kubeconfig``/``--context``/``-n`` mean what they mean to kubectl (the
namespace defaults to the kubeconfig context's), so ``kubectl airlock …``
acts where ``kubectl`` would.  Who the caller is comes from the API server
(a SelfSubjectReview), never from the kubeconfig: that is the identity the
admission webhook stamps and the operator re-checks.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from airlock.adapters import kube, kubeconfig
from airlock.domain.authority import Caller

# Exit codes of the control verbs and the runbook.
DONE = 0
REFUSED = 1
USAGE = 2
TIMED_OUT = 3

# SelfSubjectReview is GA (v1) since Kubernetes 1.28; v1beta1 serves 1.27.
_REVIEW_VERSIONS = ("v1", "v1beta1")


class CliError(Exception):
    """A failure to report in one line and exit with ``code`` (no traceback)."""

    def __init__(self, message: str, code: int = REFUSED) -> None:
        super().__init__(message)
        self.code = code


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: KUBECONFIG, ~/.kube/config)")
    parser.add_argument("--context", default=None, help="kubeconfig context (default: the current context)")
    parser.add_argument(
        "-n", "--namespace", default=None, help="namespace (default: the kubeconfig context's namespace)"
    )
    parser.add_argument("--as", dest="as_user", default=None, help="impersonate this user (like kubectl --as)")
    parser.add_argument(
        "--as-group", dest="as_groups", action="append", default=[], help="impersonate this group (repeatable)"
    )


# The cluster flags, as (flag, dest): accepted before the verb too (``airlock --kubeconfig X
# shutdown …``), the way kubectl takes its global flags anywhere on the line.
GLOBAL_FLAGS = (
    ("--kubeconfig", "kubeconfig"),
    ("--context", "context"),
    ("--namespace", "namespace"),
    ("--as", "as_user"),
    ("--as-group", "as_groups"),
)
_GLOBAL_PREFIX = "global_"


def add_global_arguments(parser: argparse.ArgumentParser) -> None:
    """The cluster flags on the top-level parser (before the verb); :func:`apply_global_arguments` hands them on."""
    group = parser.add_argument_group("cluster flags (also accepted after the verb)")
    suppress = argparse.SUPPRESS
    group.add_argument("--kubeconfig", dest=f"{_GLOBAL_PREFIX}kubeconfig", default=suppress, help="kubeconfig file")
    group.add_argument("--context", dest=f"{_GLOBAL_PREFIX}context", default=suppress, help="kubeconfig context")
    group.add_argument("-n", "--namespace", dest=f"{_GLOBAL_PREFIX}namespace", default=suppress, help="namespace")
    group.add_argument("--as", dest=f"{_GLOBAL_PREFIX}as_user", default=suppress, help="impersonate this user")
    group.add_argument(
        "--as-group", dest=f"{_GLOBAL_PREFIX}as_groups", action="append", default=suppress, help="impersonate a group"
    )


def apply_global_arguments(args: argparse.Namespace) -> str | None:
    """Move the flags given before the verb onto the verb's own; the reason it cannot, or None.

    A flag given both before and after the verb takes the later one (as kubectl does);
    repeatable flags (``--as-group``, ``run``'s ``--namespace``) collect both.
    """
    for flag, dest in GLOBAL_FLAGS:
        given = vars(args).pop(f"{_GLOBAL_PREFIX}{dest}", None)
        if given is None:
            continue
        if not hasattr(args, dest):
            return f"{flag} does not apply to this command"
        current = getattr(args, dest)
        if isinstance(current, list):
            setattr(args, dest, [*(given if isinstance(given, list) else [given]), *current])
        elif current is None:
            setattr(args, dest, given)
    return None


def load(args: argparse.Namespace) -> tuple[kubeconfig.ClusterConfig, str]:
    """The cluster configuration and the namespace to act in."""
    try:
        config = kubeconfig.load(args.kubeconfig, args.context)
        config.credential()  # an exec plugin's failure is reported here, in one line
    except kubeconfig.ConfigError as exc:
        raise CliError(f"cannot reach a cluster: {exc}") from None
    if getattr(args, "as_user", None):
        config = dataclasses.replace(config, impersonate=args.as_user, impersonate_groups=tuple(args.as_groups))
    elif getattr(args, "as_groups", None):
        raise CliError("--as-group needs --as", code=USAGE)
    return config, args.namespace or config.namespace


def client(config: kubeconfig.ClusterConfig) -> kube.KubeClient:
    return kube.KubeClient(config, timeout=15.0, field_manager="airlock-cli")


async def whoami(api: kube.KubeClient) -> Caller:
    """The caller as the API server authenticates them (``kubectl auth whoami``)."""
    last: kube.ApiError | None = None
    for version in _REVIEW_VERSIONS:
        resource = kube.Resource("authentication.k8s.io", version, "selfsubjectreviews", "SelfSubjectReview", False)
        body: dict[str, Any] = {"apiVersion": resource.api_version, "kind": "SelfSubjectReview"}
        try:
            review = await api.create(resource, None, body)
        except kube.NotFound as exc:
            last = exc
            continue
        except kube.ApiError as exc:
            if exc.status == 0:
                raise CliError(f"cannot reach the API server at {api.config.server}: {exc.message}") from None
            raise CliError(f"cannot tell who you are (SelfSubjectReview): {exc.message}") from None
        info = (review.get("status") or {}).get("userInfo") or {}
        username = str(info.get("username") or "")
        if not username:
            raise CliError("cannot tell who you are: the API server's SelfSubjectReview names no user")
        return Caller(username=username, groups=tuple(str(g) for g in info.get("groups") or []))
    raise CliError(f"cannot tell who you are: this API server serves no SelfSubjectReview (Kubernetes >= 1.27): {last}")
