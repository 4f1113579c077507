"""Where the operator listens, and the webhook's self-signed CA kept across restarts (a stable caBundle)."""

from __future__ import annotations

import base64
import contextlib
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.sandbox.cluster import ClusterThread
from airlock.sandbox.world import Api, OperatorProcess, load_crds, wait_for

pytestmark = pytest.mark.integration

HERE = "127.0.0.2"  # a loopback address other than 127.0.0.1: what binds there is not on 127.0.0.1


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def cluster() -> Iterator[ClusterThread]:
    with ClusterThread() as running:
        load_crds(Api(running.url))
        yield running


def _get(url: str) -> int | str:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        return str(exc)


def _served_certificate(port: int) -> str:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((HERE, port), timeout=2) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return ssl.DER_cert_to_PEM_cert(der)


def test_listen_addresses_and_a_webhook_ca_that_survives_restarts(cluster: ClusterThread, tmp_path: Path) -> None:
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    metrics, health, hook = free_port(), free_port(), free_port()
    extra = [
        *("--metrics-port", str(metrics), "--metrics-address", HERE),
        *("--health-port", str(health), "--health-address", HERE),
        *("--webhook-port", str(hook), "--webhook-address", HERE, "--webhook-host", "localhost"),
    ]

    def start(log: str) -> OperatorProcess:
        # The flags given later win over OperatorProcess's own "--metrics-port 0 --health-port 0".
        return OperatorProcess(kubeconfig, "http://127.0.0.1:9", tmp_path / log, extra).start()

    first = start("first.log")
    try:
        wait_for("/healthz on the given address", lambda: _get(f"http://{HERE}:{health}/healthz") == 200, timeout=30)
        assert _get(f"http://{HERE}:{metrics}/metrics") == 200
        # Nothing on the other loopback address: they bind where they are told, not 0.0.0.0.
        assert _get(f"http://127.0.0.1:{health}/healthz") != 200
        assert _get(f"http://127.0.0.1:{metrics}/metrics") != 200
        before = wait_for("the webhook's certificate", lambda: _certificate(hook), timeout=15)
    finally:
        first.stop()
    kept = cluster.get_object("secrets", "default", "airlock-webhook-ca")  # the kubeconfig context's namespace
    assert kept is not None, first.log_tail()
    assert base64.b64decode(kept["data"]["ca.crt"]).decode() == before

    second = start("second.log")
    try:
        after = wait_for("the webhook's certificate again", lambda: _certificate(hook), timeout=30)
    finally:
        second.stop()
    assert after == before  # the same CA: the caBundle registered once stays valid


def _certificate(port: int) -> str | None:
    try:
        return _served_certificate(port)
    except OSError:
        return None
