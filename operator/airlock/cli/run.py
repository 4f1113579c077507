"""``airlock run``: the operator process (SPEC §5 settings are binding)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import os
from typing import TYPE_CHECKING, Any

from airlock.adapters import logging as airlock_logging
from airlock.adapters import metrics
from airlock.domain import authority, secrets

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
    parser.add_argument("--health-port", type=int, default=8080, help="port for /healthz (0 disables)")
    parser.add_argument(
        "--health-address",
        default=os.environ.get("AIRLOCK_HEALTH_ADDRESS", "0.0.0.0"),
        help="address /healthz listens on (env AIRLOCK_HEALTH_ADDRESS; default 0.0.0.0, all)",
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
    parser.add_argument("--peering", default=None, help="Kopf peering name for HA (default: standalone)")
    parser.add_argument("--log-level", default=os.environ.get("AIRLOCK_LOG_LEVEL", "INFO"))
    parser.set_defaults(func=run)


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
    )
    if args.operator_username:
        config = dataclasses.replace(config, operator_username=args.operator_username)
    if config.admission_webhook is not None:
        # Importing registers the @kopf.on.validate/mutate handlers; Kopf refuses to
        # start with admission handlers but no webhook server, hence only here.
        importlib.import_module("airlock.handlers.admission")
    health_host = f"[{args.health_address}]" if ":" in args.health_address else args.health_address
    liveness = f"http://{health_host}:{args.health_port}/healthz" if args.health_port else None
    asyncio.run(
        kopf.operator(
            standalone=args.peering is None,
            peering_name=args.peering,
            priority=0,
            namespaces=args.namespace or (),
            clusterwide=bool(args.all_namespaces),
            liveness_endpoint=liveness,
            memo=kopf.Memo(config=config),
        )
    )
    return 0
