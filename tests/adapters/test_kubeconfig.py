"""Kubeconfig handling as kubectl does it: relative paths, clear errors, key material kept in memory, exec plugins."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from airlock.adapters import kube, kubeconfig
from airlock.cli import main as cli_main
from tests.fixtures.tls import Pki, TLSClusterThread, make_pki


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture
def tls_cluster(pki: Pki) -> Iterator[TLSClusterThread]:
    with TLSClusterThread(pki) as running:
        yield running


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory is not the kubeconfig's, and temporary files go where the test can see them."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    return scratch


def write(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


async def _namespaces(config: kubeconfig.ClusterConfig) -> list[str]:
    async with kube.KubeClient(config) as client:
        return [n["metadata"]["name"] for n in await client.list(kube.Resource("", "v1", "namespaces", "Namespace"))]


def test_relative_files_resolve_against_the_kubeconfig_directory(
    tls_cluster: TLSClusterThread, tmp_path: Path, elsewhere: Path
) -> None:
    path = write(tmp_path / "home" / ".kube" / "config", tls_cluster.kubeconfig(files=tmp_path / "home" / ".kube"))
    config = kubeconfig.load(str(path))
    assert config.ca_path == str(tmp_path / "home" / ".kube" / "pki" / "ca.crt")
    assert config.key_path == str(tmp_path / "home" / ".kube" / "pki" / "alice.key")
    # And they work: mutual TLS against the API server.
    assert "default" in asyncio.run(_namespaces(config))


def test_several_kubeconfig_files_each_resolve_against_their_own_directory(
    pki: Pki, tmp_path: Path, elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a" / "certs").mkdir(parents=True)
    (tmp_path / "a" / "certs" / "ca.crt").write_bytes(pki.ca_pem)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "token").write_text("user:alice\n")
    clusters = write(
        tmp_path / "a" / "clusters.yaml",
        {
            "clusters": [
                {"name": "prod", "cluster": {"server": "https://prod:6443", "certificate-authority": "certs/ca.crt"}}
            ]
        },
    )
    users = write(
        tmp_path / "b" / "users.yaml",
        {
            "current-context": "prod",
            "users": [{"name": "alice", "user": {"tokenFile": "token"}}],
            "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "alice"}}],
        },
    )
    monkeypatch.setenv("KUBECONFIG", f"{clusters}{os.pathsep}{users}")
    config = kubeconfig.load()
    assert config.ca_path == str(tmp_path / "a" / "certs" / "ca.crt")
    assert config.headers() == {"Authorization": "Bearer user:alice"}
    # The token file is read on every request: a rotated token is picked up.
    (tmp_path / "b" / "token").write_text("user:bob\n")
    assert config.headers() == {"Authorization": "Bearer user:bob"}


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("cluster", "certificate-authority"),
        ("user", "client-certificate"),
        ("user", "client-key"),
        ("user", "tokenFile"),
    ],
)
def test_a_missing_file_names_the_kubeconfig_and_the_field(
    tmp_path: Path, elsewhere: Path, section: str, key: str
) -> None:
    config: dict[str, Any] = {
        "clusters": [{"name": "c", "cluster": {"server": "https://c:6443"}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    config[f"{section}s"][0][section][key] = "certs/missing.pem"
    path = write(tmp_path / "kube" / "config", config)
    with pytest.raises(kubeconfig.ConfigError) as raised:
        kubeconfig.load(str(path))
    name = "c" if section == "cluster" else "u"
    assert str(raised.value) == (
        f"kubeconfig {path}, {section} {name!r}: {key} {tmp_path / 'kube' / 'certs' / 'missing.pem'} does not exist"
    )


def test_the_cli_reports_a_missing_key_file_in_one_line(
    tmp_path: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path / "kube" / "config",
        {
            "clusters": [{"name": "c", "cluster": {"server": "https://c:6443"}}],
            "users": [{"name": "u", "user": {"client-certificate": "u.crt", "client-key": "u.key"}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        },
    )
    code = cli_main.main(["runbook", "chatbot", "--kubeconfig", str(path)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"kubeconfig {path}, user 'u': client-certificate {tmp_path / 'kube' / 'u.crt'} does not exist" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_inline_key_material_never_touches_the_disk(
    tls_cluster: TLSClusterThread, tmp_path: Path, elsewhere: Path
) -> None:
    path = write(tmp_path / "config", tls_cluster.kubeconfig())
    before = set(os.listdir("/tmp"))
    config = kubeconfig.load(str(path))
    assert "default" in asyncio.run(_namespaces(config))
    assert tls_cluster.pki.client_key_pem.splitlines()[1].decode() not in repr(config)  # never in a log line
    assert list(elsewhere.iterdir()) == []
    assert not [name for name in set(os.listdir("/tmp")) - before if name.startswith("airlock-")]
    # Nothing of ours is open either: the in-memory file is closed once the SSL context holds the key.
    assert not [fd for fd in _open_fds() if "airlock-" in fd]


def _open_fds() -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    return found


def test_bad_inline_data_is_named(tmp_path: Path, elsewhere: Path) -> None:
    path = write(
        tmp_path / "config",
        {
            "clusters": [{"name": "c", "cluster": {"server": "https://c:6443", "certificate-authority-data": "!!"}}],
            "users": [{"name": "u", "user": {}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        },
    )
    with pytest.raises(kubeconfig.ConfigError, match=r"cluster 'c': certificate-authority-data is not base64"):
        kubeconfig.load(str(path))


PLUGIN = """#!{python}
import json, os, pathlib, sys
calls = pathlib.Path(sys.argv[1])
calls.write_text(str(int(calls.read_text() or 0) + 1) if calls.exists() else "1")
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
assert info["spec"]["interactive"] is False
print(json.dumps({{
    "apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
    "status": {{"token": "user:" + os.environ["WHO"], "expirationTimestamp": os.environ["EXPIRES"]}},
}}))
"""


def _exec_kubeconfig(tmp_path: Path, expires: str, command: str = "./bin/get-token") -> Path:
    plugin = tmp_path / "kube" / "bin" / "get-token"
    plugin.parent.mkdir(parents=True, exist_ok=True)
    plugin.write_text(PLUGIN.format(python=sys.executable))
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    exec_spec = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": command,
        "args": [str(tmp_path / "calls")],
        "env": [{"name": "WHO", "value": "alice"}, {"name": "EXPIRES", "value": expires}],
        "interactiveMode": "Never",
    }
    return write(
        tmp_path / "kube" / "config",
        {
            "clusters": [{"name": "c", "cluster": {"server": "https://c:6443"}}],
            "users": [{"name": "u", "user": {"exec": exec_spec}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        },
    )


def test_exec_plugin_token_is_used_and_cached_until_it_expires(tmp_path: Path, elsewhere: Path) -> None:
    config = kubeconfig.load(str(_exec_kubeconfig(tmp_path, "2999-01-01T00:00:00Z")))
    assert config.headers() == {"Authorization": "Bearer user:alice"}
    assert config.headers() == {"Authorization": "Bearer user:alice"}
    assert (tmp_path / "calls").read_text() == "1"
    expired = kubeconfig.load(str(_exec_kubeconfig(tmp_path, "2000-01-01T00:00:00Z")))
    expired.headers()
    expired.headers()
    assert (tmp_path / "calls").read_text() == "3"  # an expired credential is fetched again


def test_exec_plugin_failures_are_one_clear_line(tmp_path: Path, elsewhere: Path) -> None:
    path = _exec_kubeconfig(tmp_path, "2999-01-01T00:00:00Z", command="aws-iam-nowhere")
    with pytest.raises(kubeconfig.ConfigError, match=r"user 'u': exec aws-iam-nowhere: command not found"):
        kubeconfig.load(str(path)).headers()


def test_auth_provider_is_refused_with_the_way_out(tmp_path: Path, elsewhere: Path) -> None:
    path = write(
        tmp_path / "config",
        {
            "clusters": [{"name": "c", "cluster": {"server": "https://c:6443"}}],
            "users": [{"name": "u", "user": {"auth-provider": {"name": "gcp", "config": {}}}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        },
    )
    with pytest.raises(kubeconfig.ConfigError, match=r"auth-provider 'gcp' is not supported .* exec credential plugin"):
        kubeconfig.load(str(path))
