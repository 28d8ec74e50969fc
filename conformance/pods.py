"""Pod readiness, and the container states no wait can fix."""

from __future__ import annotations

from dataclasses import dataclass

# Waiting reasons that do not clear by themselves (failure-modes.md sections 7-8).
UNRECOVERABLE = ("CrashLoopBackOff", "CreateContainerConfigError", "InvalidImageName", "ImagePullBackOff", "ErrImageNeverPull")


@dataclass(frozen=True)
class PodProblem:
    """Why one pod is not Ready."""

    namespace: str
    pod: str
    container: str | None
    reason: str
    message: str = ""
    restarts: int = 0

    @property
    def unrecoverable(self) -> bool:
        return self.reason in UNRECOVERABLE

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.pod}" + (f" container {self.container}" if self.container else "")
        extra = f": {self.message}" if self.message else ""
        restarts = f" ({self.restarts} restarts)" if self.restarts else ""
        return f"{where} {self.reason}{restarts}{extra}"


def pod_problems(pod) -> list[PodProblem]:
    """What keeps a pod (a kubernetes V1Pod) from Ready; empty when Ready or Succeeded."""
    ns, name = pod.metadata.namespace, pod.metadata.name
    phase = pod.status.phase
    if phase == "Succeeded":
        return []
    problems = []
    for status in list(pod.status.init_container_statuses or []) + list(pod.status.container_statuses or []):
        waiting = status.state.waiting if status.state else None
        if waiting and waiting.reason:
            problems.append(PodProblem(ns, name, status.name, waiting.reason, (waiting.message or "")[:300], status.restart_count or 0))
        elif not status.ready and status.state and status.state.running and status in (pod.status.container_statuses or []):
            problems.append(PodProblem(ns, name, status.name, "NotReady", "running but its readiness probe fails", status.restart_count or 0))
    if not problems:
        ready = next((c for c in (pod.status.conditions or []) if c.type == "Ready"), None)
        if ready is None or ready.status != "True":
            message = (ready.message if ready and ready.message else "") or (pod.status.message or "")
            problems.append(PodProblem(ns, name, None, f"phase {phase}, not Ready", message[:300]))
    return problems


SIDECAR = "istio-proxy"  # the container Istio's injector adds (a native sidecar is an init container)


def is_injected(pod) -> bool:
    """True when the pod (a kubernetes V1Pod) carries Istio's sidecar."""
    containers = list(pod.spec.containers or []) + list(pod.spec.init_containers or [])
    return any(c.name == SIDECAR for c in containers)
