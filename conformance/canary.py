"""The log canary: one uniquely tagged line emitted in a cluster, to be found in the primary Loki.

In kind/existing clusters the line is the stdout of a short-lived pod in a
dedicated namespace; with provider endpoints it is appended to the file a local
log agent tails. Either way the emitter cleans up after itself.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kubernetes.client.exceptions import ApiException

from conformance.eventually import NotYet, Wait, eventually
from conformance.kube import KubeAccess
from conformance.outcomes import Failed
from conformance.stack import CanarySpec

POD_START = Wait(timeout=120, delay=0.25, max_delay=2)  # includes a busybox pull on a cold node
NAMESPACE_GONE = Wait(timeout=60, delay=0.5, max_delay=2)


@dataclass(frozen=True)
class CanaryLine:
    """The tag to search for, the whole line, and when it was written."""

    tag: str
    text: str
    emitted_at: float


def new_tag(cluster: str) -> str:
    return f"conformance-canary-{cluster}-{uuid.uuid4().hex[:12]}"


class Emitter(Protocol):
    def emit(self, tag: str) -> CanaryLine: ...

    def broad_selector(self) -> str:
        """A LogQL selector that finds the line whatever cluster label it carries."""
        ...

    def cleanup(self) -> None: ...


class FileEmitter:
    """Appends the line to a file a log agent tails (provider endpoints)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def emit(self, tag: str) -> CanaryLine:
        text = f"{tag} level=info msg=\"conformance log canary\""
        with open(self.path, "a") as f:
            f.write(text + "\n")
            f.flush()
        return CanaryLine(tag, text, time.time())

    def broad_selector(self) -> str:
        return f'{{filename="{self.path}"}}'

    def cleanup(self) -> None:
        """The file belongs to the user's agent setup; only our lines were added."""


class PodEmitter:
    """Runs a one-shot pod that echoes the line, in a namespace created for it and deleted after."""

    def __init__(self, kube: KubeAccess, spec: CanarySpec) -> None:
        self.kube = kube
        self.spec = spec
        self.core = kube.core()
        self.hop = f"conformance → {kube.cluster.name} API server (log canary pod)"

    def emit(self, tag: str) -> CanaryLine:
        self._ensure_namespace()
        text = f"{tag} level=info msg=\"conformance log canary\""
        name = f"canary-{tag.rsplit('-', 1)[-1]}"
        self.kube.call("create the canary pod", self.core.create_namespaced_pod, self.spec.namespace, self._pod(name, text))
        started = eventually(lambda: self._started_at(name), hop=self.hop, what="canary pod never started", wait=POD_START)
        return CanaryLine(tag, text, started)

    def broad_selector(self) -> str:
        return f'{{namespace="{self.spec.namespace}"}}'

    def cleanup(self) -> None:
        """Delete the namespace (and with it the pod) and wait until it is gone."""
        try:
            self.core.delete_namespace(self.spec.namespace, propagation_policy="Background", _request_timeout=15)
        except ApiException as e:
            if e.status != 404:
                raise
        eventually(self._namespace_gone, hop=self.hop, what="canary namespace not deleted", wait=NAMESPACE_GONE)

    def _ensure_namespace(self) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": self.spec.namespace, "labels": {"app.kubernetes.io/managed-by": "monitoring-conformance"}}}
        try:
            self.core.create_namespace(body, _request_timeout=15)
        except ApiException as e:
            if e.status != 409:
                raise
            # A namespace left Terminating by an earlier run must be gone before it can be reused.
            eventually(self._namespace_gone, hop=self.hop, what="old canary namespace still terminating", wait=NAMESPACE_GONE)
            self.core.create_namespace(body, _request_timeout=15)

    def _namespace_gone(self) -> None:
        try:
            ns = self.core.read_namespace(self.spec.namespace, _request_timeout=10)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        raise NotYet(f"namespace {self.spec.namespace} is {ns.status.phase}")

    def _pod(self, name: str, text: str) -> dict:
        # Restricted Pod Security: non-root, no privilege escalation, no capabilities.
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "conformance-canary"},
                         "annotations": {"sidecar.istio.io/inject": "false"}},
            "spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 0,
                "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{
                    "name": "canary",
                    "image": self.spec.image,
                    "command": ["sh", "-c", f"echo '{text}'"],
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                    "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}, "limits": {"memory": "16Mi"}},
                }],
            },
        }

    def _started_at(self, name: str) -> float:
        pod = self.kube.call("read the canary pod", self.core.read_namespaced_pod, name, self.spec.namespace)
        for status in pod.status.container_statuses or []:
            state = status.state
            if state.running and state.running.started_at:
                return state.running.started_at.timestamp()
            if state.terminated:
                if state.terminated.exit_code != 0:
                    raise Failed(self.hop, f"canary pod exited with {state.terminated.exit_code} ({state.terminated.reason})")
                return state.terminated.started_at.timestamp()
            if state.waiting and state.waiting.reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
                raise Failed(self.hop, f"canary pod cannot pull {self.spec.image}: {state.waiting.reason}",
                             f"{state.waiting.message or ''}\nPreload it (nox -s up -- --preload) or mirror it.")
        raise NotYet(f"canary pod {name} is {pod.status.phase}")

