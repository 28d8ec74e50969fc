"""Start and stop the sample app's traffic generator (scale its Deployment), leaving it as it was."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import kubernetes
from kubernetes.client.exceptions import ApiException

from conformance.kube import KubeAccess
from conformance.manifests import Deployment


class AppMissing(Exception):
    """The sample app is not deployed in this cluster."""


@contextmanager
def traffic_running(kube: KubeAccess, deployment: Deployment, replicas: int = 1) -> Iterator[None]:
    """Scale the traffic generator up for the block, then back to the replicas it had."""
    apps = kubernetes.client.AppsV1Api(kube.api_client)
    try:
        scale = apps.read_namespaced_deployment_scale(deployment.name, deployment.namespace, _request_timeout=15)
    except ApiException as e:
        if e.status == 404:
            raise AppMissing(f"deployment {deployment.namespace}/{deployment.name} not found on {kube.cluster.name}") from None
        raise
    before = scale.spec.replicas or 0
    kube.call("start the traffic generator", apps.patch_namespaced_deployment_scale,
              deployment.name, deployment.namespace, {"spec": {"replicas": max(before, replicas)}})
    try:
        yield
    finally:
        kube.call("stop the traffic generator", apps.patch_namespaced_deployment_scale,
                  deployment.name, deployment.namespace, {"spec": {"replicas": before}})
