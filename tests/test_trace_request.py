"""The forced-traced request on a Kubernetes cluster: curl in the remote's sample/sleep pod, through its sidecar.

The proving ground's API servers run no kubelet, so the exec's websocket is stood in for; the pod lookup, the
command and the reading of curl's answer are the module's own."""

from __future__ import annotations

import pytest
import yaml

from conformance.probes.tracing import trace_request
from conformance.core.access import Access
from conformance.core.topology import load_topology
from conformance.probes.tracing.trace_request import NotSent, send_forced_request
from tests.fakes.kubeapi import FakeKubeAPI


@pytest.fixture
def remote(tmp_path):
    with FakeKubeAPI("workstation") as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        path = tmp_path / "topology.yaml"
        path.write_text(yaml.safe_dump({"clusters": [
            {"name": "oke", "role": "primary", "provider": "endpoints", "services": {"jaeger": "http://127.0.0.1:1"}},
            {"name": "workstation", "role": "remote", "provider": "existing", "context": "kind-workstation",
             "kubeconfig": str(kubeconfig)}]}))
        topo = load_topology(str(path))
        yield api, Access(topo), topo.remotes[0]


@pytest.mark.parametrize("answer, status", [("200", 200), ("503", 503), ("000", 0), ("", 0)])
def test_curl_runs_in_the_sleep_pod_with_the_force_trace_header(remote, monkeypatch, answer, status):
    api, access, cluster = remote
    api.add_pod("sample", "sleep-6d5c8b7f9-x2x4k", labels={"app": "sleep"}, containers=[{"name": "sleep", "image": "curl"}])
    seen = {}

    def exec_stub(fn, name, namespace, **kw):  # kube_stream.stream(connect_get_namespaced_pod_exec, ...)
        seen.update(name=name, namespace=namespace, **kw)
        return answer

    monkeypatch.setattr(trace_request.kube_stream, "stream", exec_stub)
    sent = send_forced_request(access, cluster)
    assert (seen["name"], seen["namespace"], seen["container"]) == ("sleep-6d5c8b7f9-x2x4k", "sample", "sleep")
    command = seen["command"]
    assert command[:2] == ["curl", "-s"] and "x-envoy-force-trace: true" in command
    assert command[-1] == f"http://helloworld.sample:5000/hello?conformance-trace={sent.marker}"
    assert (sent.status, sent.via, sent.source) == (status, "exec sample/sleep-6d5c8b7f9-x2x4k", "workstation")


def test_no_running_client_pod_is_named(remote):
    api, access, cluster = remote
    api.add_pod("sample", "sleep-6d5c8b7f9-x2x4k", labels={"app": "sleep"}, phase="Pending", ready=False)
    with pytest.raises(NotSent, match=r"no running sample/sleep pod on workstation to send the request from "
                                      r"\(stack/app/sleep.yaml; 1 pods found\)"):
        send_forced_request(access, cluster)
