"""A namespace the suite makes for a check's own objects (canary pods, a dashboard ConfigMap), deleted after."""

from __future__ import annotations

from conformance.core import timing
from conformance.core.eventually import NotYet, eventually
from conformance.core.kube import KubeAccess

NAMESPACE_GONE = timing.namespace_gone()  # the namespace controller's pace: finalizers, then purge
MANAGED_BY = {"app.kubernetes.io/managed-by": "monitoring-conformance"}


class ScratchNamespace:
    """Created on demand (an earlier run's, still terminating, is waited out first); deleted, and waited out, after."""

    def __init__(self, kube: KubeAccess, name: str, hop: str, purpose: str) -> None:
        self.kube = kube
        self.name = name
        self.hop = hop
        self.purpose = purpose  # for messages: "canary", "dashboard"
        self.core = kube.core()

    def create(self) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.name, "labels": MANAGED_BY}}
        what = f"create namespace {self.name}"
        if self.kube.call(what, self.core.create_namespace, body, ok=(409,)) is not None:
            return
        existing = self.kube.call(f"read namespace {self.name}", self.core.read_namespace, self.name, ok=(404,))
        if existing is not None and existing.status.phase != "Terminating":
            return  # an earlier run's, in use: its objects have other names
        eventually(self._gone, hop=self.hop, what=f"old {self.purpose} namespace still terminating", wait=NAMESPACE_GONE)
        self.kube.call(what, self.core.create_namespace, body)

    def delete(self, wait: bool = True) -> None:
        """Delete it (and everything in it); with wait, until the API server no longer has it."""
        self.kube.call(f"delete namespace {self.name}", self.core.delete_namespace, self.name,
                       propagation_policy="Background", ok=(404,))
        if wait:
            eventually(self._gone, hop=self.hop, what=f"{self.purpose} namespace not deleted", wait=NAMESPACE_GONE)

    def _gone(self) -> None:
        ns = self.kube.call(f"read namespace {self.name}", self.core.read_namespace, self.name, ok=(404,),
                            _request_timeout=10)
        if ns is not None:
            raise NotYet(f"namespace {self.name} is {ns.status.phase}")
