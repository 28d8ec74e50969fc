"""Pod readiness, and the container states no wait can fix."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# Waiting reasons that do not clear by themselves (an image pull refused by a rate limit is one:
# docs/troubleshooting.md#docker-hub-pull-rate-limit).
UNRECOVERABLE = ("CreateContainerConfigError", "InvalidImageName", "ImagePullBackOff", "ErrImageNeverPull")
CRASH_LOOP = "CrashLoopBackOff"
# A pod may crash-loop while its dependencies start (Grafana before Loki, Promtail before its push target) and
# heal. The loop counts as persistent at RESTART_LIMIT restarts (the kubelet's back-off, 10 s doubling, has then
# waited 2.5 minutes), after RESTART_GROWTH more restarts seen during the wait, or when it still loops in the
# wait's last NEAR_END share.
RESTART_LIMIT = 5
RESTART_GROWTH = 2
NEAR_END = 0.15


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

    @property
    def crash_looping(self) -> bool:
        return self.reason == CRASH_LOOP

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


@dataclass
class CrashLoopJudge:
    """Tells a crash loop that persists from one that heals, across the probes of one wait."""

    timeout: float  # the wait's (scaled) timeout, in seconds
    started: float = field(default_factory=time.monotonic)
    first_restarts: dict[tuple, int] = field(default_factory=dict)

    def persistent(self, problem: PodProblem) -> str | None:
        """Why the loop is taken as persistent, or None while it may still heal."""
        key = (problem.namespace, problem.pod, problem.container)
        first = self.first_restarts.setdefault(key, problem.restarts)
        if problem.restarts - first >= RESTART_GROWTH:
            return f"restarted {problem.restarts - first} more times during the wait"
        if problem.restarts >= RESTART_LIMIT:
            return f"{problem.restarts} restarts"
        if time.monotonic() - self.started >= (1 - NEAR_END) * self.timeout:
            return "still crash-looping as the wait ends"
        return None
