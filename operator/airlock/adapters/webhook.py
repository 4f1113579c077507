"""The HTTPS endpoint the Kubernetes API server calls for admission reviews (SPEC §4).

Kopf serves the reviews; this module only decides how: where to listen, which
certificate to present, and — when none is given — a self-signed one made with
``cryptography`` (Kopf's own generator needs ``certbuilder``/``oscrypto``,
which airlock does not ship).  The webhook configurations themselves are
static manifests under ``policies/admission/``: airlock never edits them.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Collection
from dataclasses import dataclass

import kopf
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOST = "airlock-webhook.airlock-system.svc"
CERTIFICATE_DAYS = 365


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


class WebhookServer(kopf.WebhookServer):
    """Kopf's webhook server, self-signing with ``cryptography`` when no certificate is given."""

    build_certificate = staticmethod(build_certificate)


def server(config: WebhookConfig) -> WebhookServer:
    """The Kopf webhook server for ``config``."""
    return WebhookServer(
        addr=config.addr,
        port=config.port,
        host=config.host,
        certfile=config.cert_file,
        pkeyfile=config.key_file,
        cadump=config.ca_dump,
        insecure=config.insecure,
        extra_sans=[] if config.insecure else ["localhost", "127.0.0.1"],
    )
