"""pods/log and pods/exec through the official client (and a raw v5 websocket)."""

from __future__ import annotations

import json
import os
import time

import pytest
import websocket
from kubernetes import client
from kubernetes.client.rest import ApiException

from kubesim import KubeSim
from kubesim.runtime import host_libfaketime
from kubesim.tests.conftest import island_pod
from kubesim.tests.util import exec_stream, tcp_line, wait_for, wait_ready

CLOCK_FILE = "/tmp/server-faketime.rc"


def exec_(
    v1: client.CoreV1Api, name: str, command: list[str], container: str = "server"
) -> tuple[str, str, int]:
    resp = exec_stream(v1, name, command, container)
    out, err = resp.read_stdout(), resp.read_stderr()
    return out, err, resp.returncode


def binary_frames(ws: websocket.WebSocket) -> list[bytes]:
    """Every data frame until the server closes; each must be binary (kubectl needs that)."""
    frames = []
    while True:
        try:
            opcode, data = ws.recv_data()
        except websocket.WebSocketConnectionClosedException:
            return frames
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return frames
        assert opcode == websocket.ABNF.OPCODE_BINARY
        frames.append(data)


def test_logs_tail_timestamps_and_errors(sim: KubeSim, v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", island_pod("logs"))
    wait_ready(v1, "logs")
    text = v1.read_namespaced_pod_log("logs", "default", container="server")
    assert "seed: initial clock 2021-09-18 23:30:07" in text
    assert "server: listening on" in text
    tail = v1.read_namespaced_pod_log("logs", "default", container="server", tail_lines=1)
    assert tail == text.splitlines()[-1] + "\n"
    stamped = v1.read_namespaced_pod_log("logs", "default", container="server", timestamps=True)
    assert stamped.splitlines()[0][:4].isdigit() and "Z " in stamped.splitlines()[0]
    with pytest.raises(ApiException) as which:
        v1.read_namespaced_pod_log("logs", "default")
    assert which.value.status == 400
    assert "choose one of: [server side-container]" in json.loads(which.value.body)["message"]
    with pytest.raises(ApiException) as previous:
        v1.read_namespaced_pod_log("logs", "default", container="server", previous=True)
    assert previous.value.status == 400


def test_logs_of_a_container_that_never_started(sim: KubeSim, v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", island_pod("never", image="registry.example/missing:1"))
    wait_for(lambda: v1.read_namespaced_pod("never", "default").spec.node_name)
    time.sleep(0.2)
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_pod_log("never", "default", container="server")
    assert err.value.status == 400
    assert "is waiting to start" in json.loads(err.value.body)["message"]


def test_logs_of_a_killed_container_stay_readable(sim: KubeSim, v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", island_pod("killed"))
    wait_ready(v1, "killed")
    sim.kill_container("default", "killed", "server", reason="OOMKilled")
    wait_for(
        lambda: "OOMKilled" in v1.read_namespaced_pod_log("killed", "default", container="server")
    )


def test_follow_streams_new_lines_until_the_container_ends(
    sim: KubeSim, v1: client.CoreV1Api
) -> None:
    v1.create_namespaced_pod("default", island_pod("follow"))
    wait_ready(v1, "follow")
    resp = v1.read_namespaced_pod_log(
        "follow", "default", container="server", follow=True, _preload_content=False
    )
    sim.kill_container("default", "follow", "server", reason="Error", exit_code=2)
    body = resp.read().decode()
    assert "server: started" in body and "exited with code 2" in body


def test_exec_runs_with_the_container_env_and_exit_codes(
    sim: KubeSim, v1: client.CoreV1Api
) -> None:
    v1.create_namespaced_pod("default", island_pod("ex"))
    wait_ready(v1, "ex")
    out, _, code = exec_(v1, "ex", ["sh", "-c", "echo $FAKETIME_DONT_RESET; echo oops >&2"])
    assert (out, code) == ("1\n", 0)
    _, err, code = exec_(v1, "ex", ["sh", "-c", "echo bad >&2; exit 3"])
    assert (err, code) == ("bad\n", 3)
    out, _, _ = exec_(v1, "ex", ["cat", CLOCK_FILE])
    assert out == "@2021-09-18 23:30:07\n"  # written by the simulated seed.sh


@pytest.mark.parametrize("protocol", ["v4.channel.k8s.io", "v5.channel.k8s.io"])
def test_official_client_exec_in_both_channel_protocols(
    sim: KubeSim, v1: client.CoreV1Api, protocol: str
) -> None:
    # The client offers "v5, v4" and takes what the server picks; forcing one shows both work.
    v1.create_namespaced_pod("default", island_pod("proto"))
    wait_ready(v1, "proto")
    resp = exec_stream(
        v1,
        "proto",
        ["sh", "-c", "echo out; echo err >&2; exit 4"],
        headers={"sec-websocket-protocol": protocol},
    )
    assert resp.subprotocol == protocol
    assert (resp.read_stdout(), resp.read_stderr(), resp.returncode) == ("out\n", "err\n", 4)


def test_the_client_gets_v5_when_it_offers_both(sim: KubeSim, v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", island_pod("pick"))
    wait_ready(v1, "pick")
    resp = exec_stream(v1, "pick", ["true"])
    assert (resp.subprotocol, resp.returncode) == ("v5.channel.k8s.io", 0)


def test_writing_the_clock_file_through_exec_moves_the_server_clock(
    sim: KubeSim, v1: client.CoreV1Api
) -> None:
    v1.create_namespaced_pod("default", island_pod("shift"))
    pod = wait_ready(v1, "shift")
    script = f"printf '+86400\\n' > {CLOCK_FILE}.tmp && mv {CLOCK_FILE}.tmp {CLOCK_FILE}"
    _, err, code = exec_(v1, "shift", ["sh", "-c", script])
    assert code == 0, err
    wait_for(
        lambda: (
            abs(
                float(tcp_line(pod.status.host_ip, 30809, "TIME").split()[1])
                - (time.time() + 86400)
            )
            < 5
        ),
        timeout=3,
    )


def test_date_through_exec_shows_the_faked_clock(sim: KubeSim, v1: client.CoreV1Api) -> None:
    if host_libfaketime() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's libfaketime")
        pytest.skip("libfaketime is not installed on this host (apt-get install libfaketime)")
    v1.create_namespaced_pod("default", island_pod("date"))
    wait_ready(v1, "date")
    exec_(v1, "date", ["sh", "-c", f"printf '+3d\\n' > {CLOCK_FILE}"])
    out, err, code = exec_(v1, "date", ["date", "+%s"])
    assert code == 0, err
    assert abs(int(out) - (time.time() + 3 * 86400)) < 5


def test_date_is_emulated_where_the_host_has_no_libfaketime(
    sim: KubeSim, v1: client.CoreV1Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo must show shifted clocks on any laptop: without the library, kubesim answers
    ``date`` from the same rules its in-process servers follow."""
    monkeypatch.setattr("kubesim.runtime.host_libfaketime", lambda: None)
    v1.create_namespaced_pod("default", island_pod("nolib"))
    wait_ready(v1, "nolib")
    exec_(v1, "nolib", ["sh", "-c", f"printf '+3d\\n' > {CLOCK_FILE}"])
    out, err, code = exec_(v1, "nolib", ["date", "+%s"])
    assert code == 0, err
    assert abs(int(out) - (time.time() + 3 * 86400)) < 5
    exec_(v1, "nolib", ["sh", "-c", f"printf 'soon\\n' > {CLOCK_FILE}"])
    out, err, code = exec_(v1, "nolib", ["date", "+%s"])
    assert code == 1
    assert "libfaketime: could not parse faketime specification" in err


def test_the_downward_api_fills_field_ref_env(sim: KubeSim, v1: client.CoreV1Api) -> None:
    body = island_pod("downward")
    body["spec"]["containers"][0]["env"] += [
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    v1.create_namespaced_pod("default", body)
    pod = wait_ready(v1, "downward")
    out, err, code = exec_(v1, "downward", ["sh", "-c", "echo $NODE_NAME $POD_IP $POD_NAME"])
    assert code == 0, err
    assert out.split() == [pod.spec.node_name, pod.status.pod_ip, "downward"]


def test_exec_in_a_stopped_container_is_refused(sim: KubeSim, v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", island_pod("stopped"))
    wait_ready(v1, "stopped")
    sim.kill_container("default", "stopped", "server")
    wait_for(
        lambda: (
            v1.read_namespaced_pod("stopped", "default")
            .status.container_statuses[0]
            .state.terminated
        )
    )
    with pytest.raises(ApiException):
        exec_(v1, "stopped", ["true"])


def test_raw_v5_websocket_gets_binary_frames_and_a_status(
    sim: KubeSim, v1: client.CoreV1Api
) -> None:
    v1.create_namespaced_pod("default", island_pod("raw"))
    wait_ready(v1, "raw")
    url = (
        sim.url.replace("http", "ws") + "/api/v1/namespaces/default/pods/raw/exec?"
        "command=sh&command=-c&command=echo+hi%3B+exit+4&container=server&stdout=true"
        "&stderr=true"
    )
    ws = websocket.create_connection(url, subprotocols=["v5.channel.k8s.io"], timeout=10)
    assert ws.getsubprotocol() == "v5.channel.k8s.io"
    frames = binary_frames(ws)
    assert frames[0] == b"\x01hi\n"
    status = json.loads(frames[-1][1:])
    assert frames[-1][0] == 3
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "4"}]


def test_raw_v4_websocket_is_answered_in_v4(sim: KubeSim, v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", island_pod("v4"))
    wait_ready(v1, "v4")
    url = (
        sim.url.replace("http", "ws") + "/api/v1/namespaces/default/pods/v4/exec?"
        "command=echo&command=v4&container=server&stdout=true&stderr=true"
    )
    ws = websocket.create_connection(url, subprotocols=["v4.channel.k8s.io"], timeout=10)
    assert ws.getsubprotocol() == "v4.channel.k8s.io"
    frames = binary_frames(ws)
    assert frames[0] == b"\x01v4\n"
    assert json.loads(frames[-1][1:]) == {"metadata": {}, "status": "Success"}
