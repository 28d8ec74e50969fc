"""What every phase of the bring-up builds its steps with: the stack's folders and namespaces, the options, one
cluster's commands (kubectl, helm, istioctl with its own kubeconfig), a pinned chart's install, a LoadBalancer's address."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from conformance.provision.clusters import State
from conformance.provision.steps import Step, When
from conformance.core.versions import Chart, Versions
from conformance.core.stack import STACK_DIR
from conformance.core.topology import Cluster, Topology

VALUES = STACK_DIR / "values"


MANIFESTS = STACK_DIR / "manifests"


APP = STACK_DIR / "app"


ISTIO_NS = "istio-system"


APP_NS = "sample"


KIALI_OPERATOR_NS = "kiali-operator"


METALLB_NS = "metallb-system"


# kind waits for the control plane itself; this bounds it (slow CI: docs/troubleshooting.md#slow-ci-runs).
KIND_WAIT = "180s"


HELM_TIMEOUT = "10m"


HELM_STEP_TIMEOUT = 11 * 60.0


class StepError(Exception):
    """A Python action found something wrong; the message is the one-line diagnosis."""


@dataclass(frozen=True)
class Options:
    """What `up`/`down` were asked to do."""

    topology: Topology
    versions: Versions
    cache_dir: Path
    preload: bool = False
    offline: Path | None = None

    @property
    def loads_images(self) -> bool:
        """Images come from the local docker: --preload, and always offline (the nodes pull nothing)."""
        return self.preload or self.offline is not None


class Kube:
    """Commands against one kind cluster, always with its own kubeconfig and context."""

    def __init__(self, cluster: Cluster, state: State):
        self.cluster = cluster
        self.kubeconfig = str(state.client_kubeconfig(cluster.name))
        self.context = cluster.kube_context or f"kind-{cluster.name}"

    def kubectl(self, *args: str) -> tuple[str, ...]:
        return ("kubectl", "--kubeconfig", self.kubeconfig, "--context", self.context, *args)

    def helm(self, *args: str) -> tuple[str, ...]:
        return ("helm", "--kubeconfig", self.kubeconfig, "--kube-context", self.context, *args)

    def istioctl(self, *args: str) -> tuple[str, ...]:
        return ("istioctl", *args, "--kubeconfig", self.kubeconfig, "--context", self.context)


def helm_install(kube: Kube, chart: Chart, namespace: str, values: list[Path], sets: Sequence[str] = (),
                 set_json: Sequence[str] = ()) -> tuple[str, ...]:
    """Idempotent install of a pinned chart: `helm upgrade --install`, bounded by --wait --timeout."""
    # An OCI registry is no chart repository: helm takes oci://<registry path>/<name> and no --repo.
    where = [f"{chart.repo}/{chart.name}"] if chart.repo.startswith("oci://") else [chart.name, "--repo", chart.repo]
    argv = ["upgrade", "--install", chart.release, *where, "--version", chart.version,
            "--namespace", namespace, "--create-namespace"]
    for v in values:
        argv += ["--values", str(v)]
    for s in sets:
        argv += ["--set", s]
    for s in set_json:
        argv += ["--set-json", s]
    argv += ["--wait", "--timeout", HELM_TIMEOUT]
    return kube.helm(*argv)


def lb_address_step(phase: str, kube: Kube, namespace: str, service: str, fact: str, what: str) -> Step:
    """A bounded wait until MetalLB gives a LoadBalancer Service its address; the address becomes a fact."""
    return Step(phase, kube.cluster.name, f"address of {what}",
                kube.kubectl("get", "service", service, "--namespace", namespace,
                             "--output", "jsonpath={.status.loadBalancer.ingress[0].ip}"),
                timeout=180, retry=True, poll=3, capture=fact, ready=lambda out: bool(out.strip()),
                waits_for=f"MetalLB address for {namespace}/{service}")


def cluster_missing(name: str) -> When:
    return When(f"cluster {name} does not exist yet", lambda f: not f.get(f"{name}.exists"))
