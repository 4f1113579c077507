"""The real operator and the real CLI against an API server that requires client certificates,
with the key inline in the kubeconfig: they work, and no key material is left on disk.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from airlock.api import crd as crd_module
from airlock.sandbox.world import OperatorProcess, wait_for
from tests.fixtures.tls import TLSClusterThread, b64, make_pki

pytestmark = pytest.mark.integration

NS = "ml-prod"


@pytest.fixture
def tls_cluster() -> Iterator[TLSClusterThread]:
    with TLSClusterThread(make_pki()) as running:
        for crd in crd_module.all_crds():
            running.preload(crd)
        yield running


def _files_holding(roots: list[Path], needles: list[bytes], *, deep: bool = True) -> list[Path]:
    found = []
    for root in roots:
        for dirpath, _dirs, files in os.walk(root) if deep else [(str(root), [], os.listdir(root))]:
            for name in files:
                path = Path(dirpath) / name
                try:
                    if path.is_symlink() or path.stat().st_size > 1 << 20:
                        continue
                    content = path.read_bytes()
                except OSError:
                    continue  # another process's file, gone or unreadable
                if any(needle in content for needle in needles):
                    found.append(path)
    return found


def test_operator_and_cli_keep_inline_keys_in_memory(tls_cluster: TLSClusterThread, tmp_path: Path) -> None:
    pki = tls_cluster.pki
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(tls_cluster.kubeconfig(namespace=NS)))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    # The private key as PEM and as the kubeconfig's base64: neither may be found in a file afterwards.
    key_lines = pki.client_key_pem.splitlines()
    needles = [key_lines[1], b64(pki.client_key_pem)[:40].encode()]
    system_tmp = Path(tempfile.gettempdir())
    # The system's temporary directory is shared with other processes: its top level only, as it was before.
    before = set(_files_holding([system_tmp], needles, deep=False))

    tls_cluster.preload(
        {
            "apiVersion": "airlock.dev/v1alpha1",
            "kind": "AISystem",
            "metadata": {"name": "chatbot", "namespace": NS},
            # No target: invalid, which the operator reports in status (proof it read and wrote through mTLS).
            "spec": {"owner": "support-ml"},
        }
    )
    env_tmp = {"TMPDIR": str(scratch)}
    operator = OperatorProcess(kubeconfig, "http://127.0.0.1:9", tmp_path / "operator.log")
    saved = {k: os.environ.get(k) for k in env_tmp}
    os.environ.update(env_tmp)
    try:
        operator.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        status = wait_for(
            "the operator's status write",
            lambda: (tls_cluster.get_object("aisystems", NS, "chatbot") or {}).get("status", {}).get("phase"),
            timeout=30,
        )
        assert status == "Invalid", operator.log_tail()
    finally:
        operator.stop()

    cli = subprocess.run(
        [sys.executable, "-m", "airlock", "--kubeconfig", str(kubeconfig), "incident", "list"],
        env={**os.environ, **env_tmp},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    assert f"No AIIncidents found in namespace {NS}" in cli.stderr  # listed through mTLS, namespace from the context

    assert _files_holding([scratch], needles) == []
    assert set(_files_holding([system_tmp], needles, deep=False)) - before == set()
    assert not [p for p in system_tmp.glob("airlock-*") if p.stat().st_mtime >= kubeconfig.stat().st_mtime]
