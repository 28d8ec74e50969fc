"""The sample app's traffic: start and stop its generator (leaving it as it was), and the request it must make."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from conformance.core.kube import KubeAccess
from conformance.core.manifests import APP, Deployment, load, traffic_generator
from conformance.core.on_use import imported_on_use

kubernetes = imported_on_use("kubernetes")


class AppMissing(Exception):
    """The sample app is not deployed in this cluster."""


@contextmanager
def traffic_running(kube: KubeAccess, deployment: Deployment, replicas: int = 1) -> Iterator[None]:
    """Scale the traffic generator up for the block, then back to the replicas it had."""
    apps = kubernetes.client.AppsV1Api(kube.api_client)
    scale = kube.call("read the traffic generator's scale", apps.read_namespaced_deployment_scale, deployment.name,
                      deployment.namespace, ok=(404,))
    if scale is None:
        raise AppMissing(f"deployment {deployment.namespace}/{deployment.name} not found on {kube.cluster.name}")
    before = scale.spec.replicas or 0
    kube.call("start the traffic generator", apps.patch_namespaced_deployment_scale,
              deployment.name, deployment.namespace, {"spec": {"replicas": max(before, replicas)}})
    try:
        yield
    finally:
        kube.call("stop the traffic generator", apps.patch_namespaced_deployment_scale,
                  deployment.name, deployment.namespace, {"spec": {"replicas": before}})


@dataclass(frozen=True)
class Crossing:
    """The sample request that must cross clusters, pinned like Istio's telemetry tests pin theirs
    (istio/istio 1.29.6 tests/integration/telemetry/api/stats_test.go buildQuery: source_workload,
    destination_service and response_code among the labels of istio_requests_total)."""

    source_cluster: str
    source_workload: str
    destination_service: str

    def selector(self, response_code: str | None = '=~"2.."') -> str:
        """The istio_requests_total matchers; response_code None leaves the code free (to see what did answer)."""
        matchers = [f'source_cluster="{self.source_cluster}"', f'source_workload="{self.source_workload}"',
                    f'destination_service="{self.destination_service}"']
        if response_code:
            matchers.append(f"response_code{response_code}")
        return ",".join(matchers)


def sample_crossing(source_cluster: str) -> Crossing:
    """The traffic generator's Deployment is its workload; the server's Service its destination (stack/app)."""
    service = load(APP / "service.yaml")["metadata"]
    destination = f"{service['name']}.{service['namespace']}.svc.cluster.local"
    return Crossing(source_cluster, traffic_generator().name, destination)
