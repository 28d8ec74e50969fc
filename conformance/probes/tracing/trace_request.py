"""Send the forced-traced request from a cluster's sample client to the primary's server, as a workload does.

On a Kubernetes cluster: curl in the injected sample/sleep pod (an exec), so the request leaves through that pod's
sidecar. On a provider-endpoints cluster: the topology's `helloworld` URL, where that cluster's client sidecar takes
the request. Either way the request carries x-envoy-force-trace: true, which makes Envoy trace it whatever the
sampling rate (Envoy's x-envoy-force-trace, honoured for requests from inside the mesh).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from conformance.core.access import Access
from conformance.core.http import ServiceError
from conformance.core.on_use import imported_on_use
from conformance.core.providers import provider_of
from conformance.core.topology import Cluster
from conformance.probes.tracing.spans import FORCE_TRACE, client_workload, new_marker, request_path, server_service

kube_stream = imported_on_use("kubernetes.stream")


class NotSent(Exception):
    """The request could not be made at all (no client pod, exec refused); the message says why."""


@dataclass(frozen=True)
class Sent:
    """One forced-traced request."""

    source: str  # the cluster it was sent from
    marker: str
    url: str
    status: int  # the HTTP status the client saw (0: no answer)
    sent_us: int  # when, in microseconds since the epoch (the runner's clock)
    via: str  # "exec <ns>/<pod>" or "url"


def server_url(path: str) -> str:
    ns, name, port = server_service()
    return f"http://{name}.{ns}:{port}{path}"


def send_forced_request(access: Access, cluster: Cluster) -> Sent:
    """One request with x-envoy-force-trace from the cluster's client to the sample server."""
    marker = new_marker()
    path = request_path(marker)
    sent_us = int(time.time() * 1e6)
    client = provider_of(access, cluster).url_endpoint("helloworld")
    if client is not None:
        try:
            http = client.http
            r = http.request("GET", path, headers={FORCE_TRACE: "true"}, ok=tuple(range(300, 600)))
            status = r.status_code
        except ServiceError as e:
            raise NotSent(f"the request from {cluster.name}'s client got no answer: {e.headline}") from None
        return Sent(cluster.name, marker, http.url(path), status, sent_us, "url")
    return _exec_curl(access, cluster, marker, path, sent_us)


def _exec_curl(access: Access, cluster: Cluster, marker: str, path: str, sent_us: int) -> Sent:
    kube = access.kube(cluster)
    client = client_workload()
    pods = kube.call(f"list {client.namespace}/{client.name} pods on {cluster.name}", kube.core().list_namespaced_pod,
                     client.namespace, label_selector=f"app={client.app}").items
    running = [p for p in pods if p.status and p.status.phase == "Running" and not p.metadata.deletion_timestamp]
    if not running:
        raise NotSent(f"no running {client.namespace}/{client.name} pod on {cluster.name} to send the request from "
                      f"(stack/app/sleep.yaml; {len(pods)} pods found)")
    pod = running[0].metadata.name
    url = server_url(path)
    command = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10", "-H", f"{FORCE_TRACE}: true", url]
    try:
        out = kube.with_fresh_credentials(kube_stream.stream, kube.core().connect_get_namespaced_pod_exec, pod, client.namespace,
                                          command=command, container=client.name, stderr=True, stdin=False,
                                          stdout=True, tty=False, _request_timeout=30)
    except Exception as e:  # the websocket layer raises ApiException or its own errors
        raise NotSent(f"exec in {client.namespace}/{pod} on {cluster.name} failed: {type(e).__name__}: {e}") from None
    code = out.strip()[-3:]
    return Sent(cluster.name, marker, url, int(code) if code.isdigit() else 0, sent_us, f"exec {client.namespace}/{pod}")
