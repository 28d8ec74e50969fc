"""One interface over the three ways a topology reaches a cluster: kind, an existing cluster, bare endpoints.

As pytest-kubernetes's cluster managers hide kind, k3d and minikube, a check asks its cluster's provider to reach a
service, read a service's own log, hand it the API server, and describe itself; it never asks which provider it runs on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from conformance.core.access import Access, Endpoint, service_title
from conformance.core.kube import KubeAccess
from conformance.core.outcomes import PreconditionUnmet, Unobservable
from conformance.core.topology import Cluster

# The topology key of an endpoints cluster that names the file a service's own log is written to.
LOG_FILE_KEYS = {"grafana": "grafana_log", "prometheus": "prometheus_log"}


class LogUnavailable(Unobservable):
    """Nothing gives this run a service's own log on this cluster."""


@dataclass
class Provider(ABC):
    """A cluster as the checks see it; `access` resolves its services (topology URL, placement, labels)."""

    cluster: Cluster
    access: Access
    name: ClassVar[str]

    def endpoint(self, service: str) -> Endpoint:
        """The service's HTTP API, however this provider reaches it."""
        return self.access.endpoint(self.cluster, service)

    def url_endpoint(self, service: str) -> Endpoint | None:
        """The service at a URL the topology gives; None when it is reached through the cluster instead."""
        if service in self.cluster.services:
            return self.endpoint(service)
        return None

    def kube(self) -> KubeAccess:
        """The cluster's API server; DeclaredAbsent where the provider has none, NoKubeAccess where it is unusable."""
        return self.access.kube(self.cluster)

    @abstractmethod
    def service_log(self, service: str, since_seconds: int | None = None) -> str:
        """The service's own recent log (every pod's, or the topology's file); LogUnavailable when nothing gives it."""

    @abstractmethod
    def canary_file(self) -> Path | None:
        """The file a local log agent tails, where a canary line is appended; None where a pod writes it instead."""

    @abstractmethod
    def describe(self) -> str:
        """One line for the inventory: the provider and how this run reaches the cluster."""


class ExistingCluster(Provider):
    """A cluster reached through its API server with the user's kubeconfig."""

    name = "existing"

    def service_log(self, service: str, since_seconds: int | None = None) -> str:
        spec = self.access.service_spec(self.cluster, service)  # where it was found, else the bring-up's names
        kube = self.kube()
        title = service_title(self.cluster, service)
        core = kube.core()
        pods = kube.call(f"list {title} pods", core.list_namespaced_pod, spec.namespace,
                         label_selector=spec.pod_selector).items
        if not pods:
            raise PreconditionUnmet(f"conformance → {title}", f"no pod matches {spec.pod_selector} in {spec.namespace}")
        optional = {"since_seconds": since_seconds} if since_seconds else {}  # none: the current container's whole run
        return "\n".join(kube.call(f"read {title}'s log", core.read_namespaced_pod_log, pod.metadata.name,
                                   spec.namespace, container=spec.container, **optional) for pod in pods)

    def canary_file(self) -> Path | None:
        return None

    def describe(self) -> str:
        where = [f"context {self.cluster.kube_context}"] if self.cluster.kube_context else []
        where += [f"kubeconfig {self.cluster.kubeconfig}"] if self.cluster.kubeconfig else []
        return f"{self.name}, {', '.join(where) or 'the current kubeconfig context'}"


class KindCluster(ExistingCluster):
    """A cluster the bring-up made with kind, reached through its `kind-<name>` context."""

    name = "kind"


class Endpoints(Provider):
    """A cluster known only by its services' URLs: no API server, logs from the files the topology names."""

    name = "endpoints"

    def url_endpoint(self, service: str) -> Endpoint | None:
        return self.endpoint(service)  # every service is a URL here; one the topology lacks is not observed

    def service_log(self, service: str, since_seconds: int | None = None) -> str:
        path = {"grafana": self.cluster.grafana_log_file, "prometheus": self.cluster.prometheus_log_file}.get(service)
        if path is None:
            key = LOG_FILE_KEYS.get(service, f"{service}_log")
            raise LogUnavailable(f"no log source for {service} on cluster {self.cluster.name} "
                                 f"(provider endpoints without {key})")
        try:
            return path.read_text(errors="replace")
        except OSError as e:
            raise LogUnavailable(f"{service_title(self.cluster, service)}'s log file {path}: {e.strerror or e}") from None

    def canary_file(self) -> Path | None:
        if self.cluster.log_canary_file is None:
            raise LogUnavailable(f"cluster {self.cluster.name} has provider endpoints and no log_canary file")
        return self.cluster.log_canary_file

    def describe(self) -> str:
        return f"{self.name}, {len(self.cluster.services)} URL(s), no API server"


PROVIDERS: dict[str, type[Provider]] = {p.name: p for p in (KindCluster, ExistingCluster, Endpoints)}


def provider_of(access: Access, cluster: Cluster) -> Provider:
    """The provider the topology names for cluster."""
    return PROVIDERS[cluster.provider](cluster, access)
