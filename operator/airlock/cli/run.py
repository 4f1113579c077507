"""``airlock run``: the operator process (SPEC §5 settings are binding)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import os
import socket
import uuid
from typing import TYPE_CHECKING, Any

from airlock.adapters import logging as airlock_logging
from airlock.adapters import metrics
from airlock.api import durations
from airlock.domain import authority, leadership, secrets, sharding

if TYPE_CHECKING:
    from airlock.adapters.webhook import WebhookConfig

# Kept in step with airlock.adapters.webhook.DEFAULT_HOST (a test checks it) without importing kopf.
WEBHOOK_HOST = "airlock-webhook.airlock-system.svc"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run", help="run the operator", description="Run the airlock operator (Kopf) against the current cluster."
    )
    parser.add_argument(
        "--prometheus-url",
        default=os.environ.get("AIRLOCK_PROMETHEUS_URL"),
        help="Prometheus base URL (env AIRLOCK_PROMETHEUS_URL)",
    )
    parser.add_argument(
        "--prometheus-token-file",
        default=os.environ.get("AIRLOCK_PROMETHEUS_TOKEN_FILE"),
        help="bearer token file for Prometheus (re-read on every query)",
    )
    parser.add_argument(
        "--prometheus-ca-file", default=os.environ.get("AIRLOCK_PROMETHEUS_CA_FILE"), help="CA bundle for Prometheus"
    )
    parser.add_argument("--prometheus-timeout", type=float, default=5.0, help="seconds per query (default 5)")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", action="append", default=[], help="serve this namespace (repeatable)")
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="serve every namespace")
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("AIRLOCK_METRICS_PORT", "9090")),
        help="port for /metrics (env AIRLOCK_METRICS_PORT; 0 disables)",
    )
    parser.add_argument(
        "--metrics-address",
        default=os.environ.get("AIRLOCK_METRICS_ADDRESS", "0.0.0.0"),
        help="address /metrics listens on (env AIRLOCK_METRICS_ADDRESS; default 0.0.0.0, all)",
    )
    parser.add_argument(
        "--health-port", type=int, default=8080, help="port for /healthz and /readyz (role: leader|standby; 0 disables)"
    )
    parser.add_argument(
        "--health-address",
        default=os.environ.get("AIRLOCK_HEALTH_ADDRESS", "0.0.0.0"),
        help="address /healthz and /readyz listen on (env AIRLOCK_HEALTH_ADDRESS; default 0.0.0.0, all)",
    )
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: KUBECONFIG or in-cluster)")
    parser.add_argument("--context", default=None, help="kubeconfig context")
    parser.add_argument(
        "--status-refresh", type=float, default=30.0, help="seconds between value-only status updates (default 30)"
    )
    admission = parser.add_argument_group(
        "admission (SPEC §4, §7)", "who may change the plan; the webhook that enforces control annotations and the plan"
    )
    admission.add_argument(
        "--admin-group",
        action="append",
        default=None,
        help="group allowed to change the plan (an AISystem's spec, ContainmentPolicies; repeatable; env AIRLOCK_ADMIN_GROUPS, "
        "comma-separated; default airlock-admins and system:masters)",
    )
    admission.add_argument(
        "--operator-username",
        default=None,
        help="the operator's own identity, exempt from admission checks (env AIRLOCK_OPERATOR_USERNAME; "
        "default system:serviceaccount:airlock-system:airlock)",
    )
    admission.add_argument(
        "--webhook-port",
        type=int,
        default=int(os.environ.get("AIRLOCK_WEBHOOK_PORT") or 0),
        help="serve admission webhooks on this port (env AIRLOCK_WEBHOOK_PORT; default off)",
    )
    admission.add_argument(
        "--webhook-addr",
        "--webhook-address",
        dest="webhook_addr",
        default="0.0.0.0",
        help="address the webhook listens on (default 0.0.0.0, all)",
    )
    admission.add_argument(
        "--webhook-host",
        default=WEBHOOK_HOST,
        help=f"the name the API server calls, put into a self-signed certificate (default {WEBHOOK_HOST})",
    )
    admission.add_argument("--webhook-cert-file", default=None, help="TLS certificate (default: self-signed)")
    admission.add_argument("--webhook-key-file", default=None, help="TLS private key for --webhook-cert-file")
    admission.add_argument("--webhook-ca-dump", default=None, help="write the CA bundle the API server needs here")
    admission.add_argument(
        "--webhook-ca-secret",
        default=os.environ.get("AIRLOCK_WEBHOOK_CA_SECRET", "airlock-webhook-ca"),
        metavar="NAME",
        help="keep a self-signed certificate (its own CA) in this Secret of the operator's namespace and reuse "
        "it on every start, so a registered caBundle stays valid (default airlock-webhook-ca; '' to not keep "
        "it). Needs get on that name and create on Secrets in that namespace",
    )
    admission.add_argument(
        "--webhook-insecure", action="store_true", help="plain HTTP (behind a TLS-terminating proxy, or for tests)"
    )
    parser.add_argument(
        "--notification-secret",
        action="append",
        default=None,
        metavar="NAME",
        help="a Secret name notification channels may use (repeatable; env AIRLOCK_NOTIFICATION_SECRETS, "
        "comma-separated; default airlock-notify): the operator reads no other Secret, and its RBAC allows "
        "no other (chart value notificationSecrets)",
    )
    ha = parser.add_argument_group(
        "high availability and sharding (SPEC §10)",
        "several replicas, one leader per Lease; --shard splits namespaces between Leases",
    )
    ha.add_argument(
        "--leader-elect",
        action="store_true",
        default=os.environ.get("AIRLOCK_LEADER_ELECT", "").lower() in ("1", "true", "yes"),
        help="act only while holding the Lease (coordination.k8s.io/v1) `airlock` in --lease-namespace; "
        "standbys keep warm caches and take over within the lease duration (env AIRLOCK_LEADER_ELECT)",
    )
    ha.add_argument(
        "--lease-duration",
        type=_seconds,
        default=4.0,
        help="how long a Lease that stopped changing stays another replica's (whole seconds; default 4s)",
    )
    ha.add_argument(
        "--renew-deadline",
        type=_seconds,
        default=3.0,
        help="the leader stops acting when it has not renewed for this long (< --lease-duration; default 3s)",
    )
    ha.add_argument(
        "--retry-period", type=_seconds, default=0.5, help="between renewals and acquisition attempts (default 500ms)"
    )
    ha.add_argument(
        "--lease-namespace",
        default=os.environ.get("AIRLOCK_LEASE_NAMESPACE") or None,
        help="the operator's namespace, where its Lease lives (env AIRLOCK_LEASE_NAMESPACE; "
        "default: the service account's or the kubeconfig context's namespace)",
    )
    ha.add_argument(
        "--identity",
        default=os.environ.get("POD_NAME") or None,
        help="this replica's name in the Lease, followed by _ and a random suffix per process "
        "(env POD_NAME; default: the hostname)",
    )
    ha.add_argument(
        "--shard",
        type=_shard,
        default=os.environ.get("AIRLOCK_SHARD") or None,
        help="I/N: serve only the namespaces whose stable hash is I modulo N, electing a leader on the Lease "
        "airlock-shard-I-of-N (env AIRLOCK_SHARD; default: every namespace)",
    )
    parser.add_argument("--peering", default=None, help="Kopf peering name (not leader election; see README)")
    parser.add_argument("--log-level", default=os.environ.get("AIRLOCK_LOG_LEVEL", "INFO"))
    parser.set_defaults(func=run)


def _seconds(text: str) -> float:
    """``4``, ``4s``, ``500ms``: seconds as a float (argparse reports the ValueError's text)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return durations.parse_seconds(text)
    except durations.DurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _shard(text: str) -> sharding.Shard:
    try:
        return sharding.Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _identity(args: argparse.Namespace) -> str:
    # Unique per process, as client-go's hostname_uuid: a container restarted in the same pod (same
    # POD_NAME) must not resume a Lease its predecessor held — it waits for it like any standby.
    return f"{args.identity or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def _admin_groups(args: argparse.Namespace) -> tuple[str, ...]:
    if args.admin_group:
        return tuple(args.admin_group)
    from_env = [g.strip() for g in os.environ.get("AIRLOCK_ADMIN_GROUPS", "").split(",") if g.strip()]
    return tuple(from_env) or authority.DEFAULT_ADMIN_GROUPS


def _notification_secrets(args: argparse.Namespace) -> tuple[str, ...]:
    if args.notification_secret:
        return tuple(dict.fromkeys(args.notification_secret))
    from_env = [n.strip() for n in os.environ.get("AIRLOCK_NOTIFICATION_SECRETS", "").split(",") if n.strip()]
    return tuple(from_env) or (secrets.DEFAULT_NOTIFICATION_SECRET,)


def _webhook(args: argparse.Namespace) -> WebhookConfig | None:
    if not args.webhook_port:
        return None
    # Imported here: kopf and cryptography cost ~0.8 s, which every other verb should not pay.
    from airlock.adapters import webhook

    return webhook.WebhookConfig(
        port=args.webhook_port,
        addr=args.webhook_addr,
        host=args.webhook_host,
        cert_file=args.webhook_cert_file,
        key_file=args.webhook_key_file,
        ca_dump=args.webhook_ca_dump,
        insecure=args.webhook_insecure,
        ca_secret=args.webhook_ca_secret,
    )


def run(args: argparse.Namespace) -> int:
    import kopf

    from airlock.handlers import operator as handlers

    if not args.prometheus_url:
        print("airlock run: --prometheus-url (or AIRLOCK_PROMETHEUS_URL) is required")
        return 2
    if bool(args.webhook_cert_file) != bool(args.webhook_key_file):
        print("airlock run: --webhook-cert-file and --webhook-key-file go together")
        return 2
    if not args.namespace and not args.all_namespaces:
        args.all_namespaces = True
    timing = leadership.Timing(
        lease_duration=args.lease_duration, renew_deadline=args.renew_deadline, retry_period=args.retry_period
    )
    if args.leader_elect and (problems := timing.problems()):
        print("airlock run: " + "; ".join(problems))
        return 2
    shard: sharding.Shard = args.shard or sharding.Shard()
    if shard.sharded and not args.leader_elect:
        print("airlock run: --shard needs --leader-elect (each shard elects its leader on its own Lease)")
        return 2
    if shard.sharded and args.namespace:
        print("airlock run: --shard splits every namespace between shards; it does not go with --namespace")
        return 2
    airlock_logging.configure(args.log_level)
    debug = args.log_level.upper() == "DEBUG"
    # Kopf's per-handler success lines would drown airlock's own events.
    kopf.configure(log_format=kopf.LogFormat.JSON, verbose=debug, quiet=not debug)
    if args.metrics_port:
        metrics.serve(args.metrics_port, host=args.metrics_address)
    config = handlers.OperatorConfig(
        prometheus_url=args.prometheus_url,
        prometheus_token_file=args.prometheus_token_file,
        prometheus_ca_file=args.prometheus_ca_file,
        prometheus_timeout=args.prometheus_timeout,
        kubeconfig=args.kubeconfig,
        context=args.context,
        status_refresh_seconds=args.status_refresh,
        admin_groups=_admin_groups(args),
        notification_secrets=_notification_secrets(args),
        admission_webhook=_webhook(args),
        leader_elect=args.leader_elect,
        lease_timing=timing,
        lease_namespace=args.lease_namespace,
        identity=_identity(args),
        shard=shard,
        health_port=args.health_port,
        health_address=args.health_address,
    )
    if args.operator_username:
        config = dataclasses.replace(config, operator_username=args.operator_username)
    if config.admission_webhook is not None:
        # Importing registers the @kopf.on.validate/mutate handlers; Kopf refuses to
        # start with admission handlers but no webhook server, hence only here.
        importlib.import_module("airlock.handlers.admission")
    # /healthz and /readyz are airlock's own (adapters.health): readiness reports leader or standby.
    asyncio.run(
        kopf.operator(
            standalone=args.peering is None,
            peering_name=args.peering,
            priority=0,
            namespaces=args.namespace or (),
            clusterwide=bool(args.all_namespaces),
            memo=kopf.Memo(config=config),
        )
    )
    return 0
