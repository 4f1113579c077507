"""The HTTPS endpoint the Kubernetes API server calls for admission reviews (SPEC §4).

Kopf serves the reviews; this module only decides how: where to listen, which
certificate to present, and — when none is given — a self-signed one made with
``cryptography`` (Kopf's own generator needs ``certbuilder``/``oscrypto``,
which airlock does not ship).  The webhook configurations themselves are
static manifests under ``policies/admission/``: airlock never edits them.

The self-signed certificate is its own CA, and that CA is what a webhook
configuration's ``caBundle`` holds: a new one on every start would leave the
registered bundle stale.  So it is kept in a Secret in the operator's
namespace (:func:`persisted_certificate`; ``--webhook-ca-secret``, default
``airlock-webhook-ca``), made once and reused by every later start.  RBAC:
``get`` on that one name and ``create`` in that namespace (a Role).  The key
reaches the TLS server through in-memory files (``memfd``), never the disk.
Certificates given as files (cert-manager, the chart's own) are used as they
are.

Denials carry ``status.reason`` as well as ``code`` (Kopf sets only the code
and message): the API server passes the webhook's status on, and kubectl
prints ``Error from server (Forbidden): …`` only when the reason says so.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import kopf
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from airlock.adapters import kube

log = structlog.get_logger("airlock.webhook")

DEFAULT_HOST = "airlock-webhook.airlock-system.svc"
DEFAULT_CA_SECRET = "airlock-webhook-ca"
CERTIFICATE_DAYS = 365
# A kept certificate closer than this to its end is reported (a new one needs the Secret deleted).
RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class WebhookConfig:
    """What ``airlock run --webhook-*`` was told."""

    port: int
    addr: str = "0.0.0.0"
    # The name the API server uses (the Service's DNS name): put into the self-signed certificate.
    host: str = DEFAULT_HOST
    cert_file: str | None = None
    key_file: str | None = None
    # Write the CA bundle here (for the webhook configurations' caBundle, or curl --cacert).
    ca_dump: str | None = None
    # Plain HTTP: only behind a TLS-terminating proxy, or for local tests.
    insecure: bool = False
    # Keep the self-signed certificate (its own CA) in this Secret of the operator's namespace; "" to not keep it.
    ca_secret: str = DEFAULT_CA_SECRET

    @property
    def self_signed(self) -> bool:
        return not self.insecure and not (self.cert_file and self.key_file)

    def hostnames(self) -> list[str]:
        """The names a self-signed certificate covers (as Kopf would put them in)."""
        names = [self.host, *([] if self.addr in ("", "0.0.0.0", "::") else [self.addr])]
        return list(dict.fromkeys([*names, "localhost", "127.0.0.1"]))


def build_certificate(hostnames: Collection[str], password: str | None = None) -> tuple[bytes, bytes]:
    """A self-signed server certificate (its own CA) for ``hostnames``: PEM certificate and PEM key."""
    names: list[x509.GeneralName] = []
    for hostname in dict.fromkeys(hostnames):
        try:
            ip = ipaddress.ip_address(hostname)
        except ValueError:
            names.append(x509.DNSName(hostname))
            continue
        if not ip.is_unspecified:
            names.append(x509.IPAddress(ip))
    if not names:
        raise ValueError("a webhook certificate needs at least one hostname or address")
    common_name = next((str(n.value) for n in names if isinstance(n, x509.DNSName)), str(names[0].value))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERTIFICATE_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def with_reason(response: Any) -> Any:
    """An AdmissionReview response whose error ``status`` also says why in a word (``Forbidden`` for 403)."""
    status = ((response or {}).get("response") or {}).get("status")
    if isinstance(status, dict) and status.get("code") and not status.get("reason"):
        try:
            phrase = HTTPStatus(int(status["code"])).phrase
        except ValueError:
            phrase = "InternalError"
        # Kubernetes' StatusReason spelling: Forbidden, ServiceUnavailable, InternalServerError → InternalError.
        status["reason"] = {"Internal Server Error": "InternalError"}.get(phrase, phrase.replace(" ", ""))
    return response


class WebhookServer(kopf.WebhookServer):
    """Kopf's webhook server, self-signing with ``cryptography`` when no certificate is given."""

    build_certificate = staticmethod(build_certificate)

    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        async def reasoned(request: Any, **kwargs: Any) -> Any:
            return with_reason(await fn(request, **kwargs))

        async for client_config in super().__call__(reasoned):
            yield client_config


def _memory_file(name: str, data: bytes) -> str:
    """A path to ``data`` that is no file on disk (Linux memfd, open for the process's life)."""
    fd = os.memfd_create(f"airlock-{name}", os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    return f"/proc/self/fd/{fd}"


def server(config: WebhookConfig, kept: tuple[bytes, bytes] | None = None) -> WebhookServer:
    """The Kopf webhook server for ``config``; ``kept``: a persisted self-signed (certificate, key) to present."""
    cert_file, key_file = config.cert_file, config.key_file
    if kept is not None:
        cert_file, key_file = _memory_file("webhook-crt", kept[0]), _memory_file("webhook-key", kept[1])
    return WebhookServer(
        addr=config.addr,
        port=config.port,
        host=config.host,
        certfile=cert_file,
        pkeyfile=key_file,
        cadump=config.ca_dump,
        insecure=config.insecure,
        extra_sans=[] if config.insecure else ["localhost", "127.0.0.1"],
    )


async def persisted_certificate(
    client: kube.KubeClient, namespace: str, config: WebhookConfig
) -> tuple[bytes, bytes] | None:
    """The self-signed (certificate, key) kept in ``config.ca_secret``, made and stored on first use.

    None when there is nothing to keep (certificate files given, plain HTTP, no Secret name) or the
    Secret cannot be read or written (then Kopf self-signs in memory, as before, and this is logged).
    """
    if not config.self_signed or not config.ca_secret or not hasattr(os, "memfd_create"):
        return None
    name = config.ca_secret
    try:
        found = await client.get_or_none(kube.SECRETS, namespace, name)
        if found is None:
            cert, key = build_certificate(config.hostnames())
            body = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/name": "airlock"}},
                "type": "kubernetes.io/tls",
                "data": {
                    "tls.crt": base64.b64encode(cert).decode(),
                    "tls.key": base64.b64encode(key).decode(),
                    "ca.crt": base64.b64encode(cert).decode(),
                },
            }
            try:
                await client.create(kube.SECRETS, namespace, body)
                log.info("webhook.ca_created", secret=f"{namespace}/{name}")
                return cert, key
            except kube.Conflict:  # another replica made it first: use theirs
                found = await client.get(kube.SECRETS, namespace, name)
        data = found.get("data") or {}
        cert, key = base64.b64decode(data.get("tls.crt", "")), base64.b64decode(data.get("tls.key", ""))
        certificate = x509.load_pem_x509_certificate(cert)
        serialization.load_pem_private_key(key, password=None)
    except kube.ApiError as exc:
        log.warning("webhook.ca_not_kept", secret=f"{namespace}/{name}", error=str(exc))
        return None
    except ValueError as exc:
        log.warning("webhook.ca_unreadable", secret=f"{namespace}/{name}", error=str(exc))
        return None
    left = certificate.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    missing = [h for h in config.hostnames() if h not in [str(v) for v in sans.get_values_for_type(x509.DNSName)]]
    missing = [h for h in missing if h not in [str(v) for v in sans.get_values_for_type(x509.IPAddress)]]
    if left < RENEW_BEFORE or missing:
        log.warning(
            "webhook.ca_needs_renewal",
            secret=f"{namespace}/{name}",
            expires=certificate.not_valid_after_utc.isoformat(),
            missing_hostnames=missing,
            hint="delete the Secret and restart: a new certificate is made and kept (update the caBundle)",
        )
    return cert, key
