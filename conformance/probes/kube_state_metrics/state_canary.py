"""The state canary: a pod that stays running on a cluster, for kube-state-metrics to describe.

The log canary exits once its line is written (and so is never Ready); this one sleeps until the check deletes
its namespace, so its Ready condition is what the cluster's kubelet says of a healthy pod.
"""

from __future__ import annotations

import uuid

from conformance.probes.logs.canary import POD_START
from conformance.core.eventually import NotYet, eventually
from conformance.core.kube import KubeAccess
from conformance.probes.kube_state_metrics.target import Canary
from conformance.core.outcomes import Failed
from conformance.core.scratch_namespace import ScratchNamespace
from conformance.core.stack import CanarySpec

SUFFIX = "-state"  # beside the log canary's namespace, never the same one: each check deletes its own


class StateCanary:
    """Creates the pod in a namespace made for it, waits until it runs, and deletes the namespace after."""

    def __init__(self, kube: KubeAccess, spec: CanarySpec) -> None:
        self.kube = kube
        self.image = spec.image
        self.namespace = spec.namespace + SUFFIX
        self.core = kube.core()
        self.hop = f"conformance → {kube.cluster.name} API server (state canary pod)"
        self.scratch = ScratchNamespace(kube, self.namespace, self.hop, "state canary")

    def start(self) -> Canary:
        self.scratch.create()
        name = f"state-canary-{uuid.uuid4().hex[:10]}"
        self.kube.call("create the state canary pod", self.core.create_namespaced_pod, self.namespace, self._pod(name))
        eventually(lambda: self._running(name), hop=self.hop, what="state canary pod never ran", wait=POD_START)
        return Canary(self.kube.cluster.name, self.namespace, name)

    def ready_condition(self, canary: Canary) -> str:
        """The pod's Ready condition as the API server has it: 'True', or 'False (reason: message)'."""
        pod = self.kube.call("read the state canary pod", self.core.read_namespaced_pod, canary.pod, canary.namespace)
        for c in pod.status.conditions or []:
            if c.type == "Ready":
                detail = (c.reason or "no reason") + (f": {c.message}" if c.message else "")
                return c.status if c.status == "True" else f"{c.status} ({detail})"
        return "absent"

    def not_ready_while_running(self, canary: Canary) -> str | None:
        """The Ready condition ('False (reason: message)') when every container runs and the pod is still not Ready;
        None otherwise. The canary has no readiness probe: the kubelet marks a running container ready in the same
        status (pkg/kubelet/prober/prober_manager.go UpdatePodStatus), so this is no start-up moment."""
        pod = self.kube.call("read the state canary pod", self.core.read_namespaced_pod, canary.pod, canary.namespace)
        statuses = pod.status.container_statuses or []
        if not statuses or not all(c.state and c.state.running for c in statuses):
            return None  # starting or restarting: it may yet be Ready
        condition = self.ready_condition(canary)
        return condition if condition.startswith("False") else None

    def cleanup(self) -> None:
        self.scratch.delete()

    def _running(self, name: str) -> None:
        pod = self.kube.call("read the state canary pod", self.core.read_namespaced_pod, name, self.namespace)
        for status in pod.status.container_statuses or []:
            waiting = status.state.waiting
            if waiting and waiting.reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
                raise Failed(self.hop, f"state canary pod cannot pull {self.image}: {waiting.reason}",
                             f"{waiting.message or ''}\nPreload it (nox -s up -- --preload) or mirror it.")
        if pod.status.phase != "Running":
            raise NotYet(f"state canary pod {name} is {pod.status.phase}")

    def _pod(self, name: str) -> dict:
        # Restricted Pod Security, as the log canary: non-root, no privilege escalation, no capabilities.
        return {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "conformance-state-canary"},
                         "annotations": {"sidecar.istio.io/inject": "false"}},
            "spec": {
                "terminationGracePeriodSeconds": 0,
                "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{
                    "name": "canary", "image": self.image, "command": ["sleep", "3600"],
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                    "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}, "limits": {"memory": "16Mi"}},
                }],
            },
        }
