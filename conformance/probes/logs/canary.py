"""The log canary: one uniquely tagged line emitted in a cluster, to be found in the primary Loki.

In kind/existing clusters the line is the stdout of a short-lived pod in a
dedicated namespace; with provider endpoints it is appended to the file a local
log agent tails. Either way the emitter cleans up after itself.

The line is followed over Loki's tail websocket, as loki-canary does (grafana/loki
v2.9.3 pkg/canary/reader/reader.go), so it is seen the moment Loki has it; where the
tail is refused (a proxy that does not upgrade) or ends, Loki is polled instead.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, TypeVar


from conformance.clients.loki import LokiClient, Tail, TailClosed, TailRefused
from conformance.core import timing
from conformance.core.eventually import NotYet, Wait, eventually
from conformance.core.kube import KubeAccess
from conformance.core.outcomes import Failed, PreconditionUnmet
from conformance.core.providers import Provider
from conformance.core.scratch_namespace import ScratchNamespace
from conformance.core.stack import CanarySpec

T = TypeVar("T")
POD_START = timing.pod_started()  # includes a busybox pull on a cold node


@dataclass(frozen=True)
class CanaryLine:
    """The tag to search for, the whole line, and when it was written."""

    tag: str
    text: str
    emitted_at: float
    source: str = ""  # where a log agent reads it from (a file, a pod's log), for diagnoses


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
        return CanaryLine(tag, text, time.time(), str(self.path))

    def broad_selector(self) -> str:
        return f'{{filename="{self.path}"}}'

    def cleanup(self) -> None:
        """The file belongs to the user's agent setup; only our lines were added."""


def emitter_on(provider: Provider, spec: CanarySpec) -> Emitter:
    """The file a local log agent tails where the provider names one, else a pod through its API server."""
    path = provider.canary_file()
    return FileEmitter(path) if path is not None else PodEmitter(provider.kube(), spec)


class PodEmitter:
    """Runs a one-shot pod that echoes the line, in a namespace created for it and deleted after."""

    def __init__(self, kube: KubeAccess, spec: CanarySpec) -> None:
        self.kube = kube
        self.spec = spec
        self.core = kube.core()
        self.hop = f"conformance → {kube.cluster.name} API server (log canary pod)"
        self.namespace = ScratchNamespace(kube, spec.namespace, self.hop, "canary")

    def emit(self, tag: str) -> CanaryLine:
        self.namespace.create()
        text = f"{tag} level=info msg=\"conformance log canary\""
        name = f"canary-{tag.rsplit('-', 1)[-1]}"
        self.kube.call("create the canary pod", self.core.create_namespaced_pod, self.spec.namespace, self._pod(name, text))
        started = eventually(lambda: self._started_at(name), hop=self.hop, what="canary pod never started", wait=POD_START)
        return CanaryLine(tag, text, started, f"the log of pod {self.spec.namespace}/{name}")

    def broad_selector(self) -> str:
        return f'{{namespace="{self.spec.namespace}"}}'

    def cleanup(self) -> None:
        """Delete the namespace (and with it the pod) and wait until it is gone."""
        self.namespace.delete()

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


# -- following the line in Loki --------------------------------------------------------------
TAIL_SLICE = 0.5  # seconds one look at the tail blocks; between looks the wait checks the hop board
TAIL_WAIT = timing.back_to_back()  # each look blocks on the websocket itself: no pause between
TAIL_LIMIT = 10  # entries of history the tail sends first: the tag is new, so at most the line itself


@dataclass(frozen=True)
class Sighting:
    """The line as Loki gave it: its labels, when it arrived here, and how it was followed."""

    labels: dict[str, str]
    seen_at: float
    via: str  # "tail" or "poll"


class TailLost(Exception):
    """The tail ended before the line came: the rest of the wait polls."""


class Follower:
    """Finds a canary line in Loki: over the tail while Loki upgrades the connection, else by polling.

    `broad` selects the line whatever cluster label it carries (the emitter's selector); the
    caller decides what the labels it arrived with mean.
    """

    def __init__(self, loki: LokiClient, tag: str, broad: str, exact: str, lookback: float) -> None:
        self.loki = loki
        self.tag = tag
        self.queries = [exact, f'{{cluster=~".+"}} |= "{tag}"', f'{broad} |= "{tag}"']
        self.lookback = lookback
        self.tail: Tail | None = None
        self.tail_error = ""  # why the tail was refused or ended
        self.since = time.time()

    def open(self) -> "Follower":
        """Open the tail (before the line is written, so it comes live); remember why if refused."""
        try:
            self.tail = self.loki.tail(self.queries[-1], start=self.since - self.lookback, limit=TAIL_LIMIT)
        except TailRefused as e:
            self.tail_error = f"tail refused ({e})"
        return self

    @property
    def via(self) -> str:
        return "tail" if self.tail is not None else "poll"

    def from_tail(self) -> Sighting:
        """One look at the tail; TailLost if Loki ended it."""
        assert self.tail is not None
        try:
            message = self.tail.next(TAIL_SLICE)
        except TailClosed as e:
            self.close()
            self.tail_error = f"tail ended ({e})"
            raise TailLost(str(e)) from None
        for stream in message.streams if message else []:
            if any(self.tag in value[1] for value in stream.get("values", [])):
                return Sighting(dict(stream.get("stream") or {}), message.received_at, "tail")
        raise NotYet(f"no line matching {self.queries[0]} (following Loki's tail of {self.queries[-1]})")

    def by_polling(self, since: float) -> Sighting:
        """One round of queries: the exact one first, then the broad ones (a line under another label)."""
        for query in self.queries:
            now = time.time()
            found = self.loki.streams(query, start=since - self.lookback, end=now + 60, limit=5)
            if found:
                return Sighting(dict(found[0]["stream"]), now, "poll")
        raise NotYet(f"no line matching {self.queries[0]}")

    def close(self) -> None:
        if self.tail is not None:
            self.tail.close()
            self.tail = None

    def __enter__(self) -> "Follower":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


HOPELESS_EVERY = 2.0  # seconds between looks at the agent's counters while the canary is awaited


def give_up_when_hopeless(probe: Callable[[], T], *, hop: str, what: str,
                          hopeless: Callable[[], str | None] | None) -> Callable[[], T]:
    """The probe, asking hopeless() every HOPELESS_EVERY seconds while it finds nothing (NotYet); a reason ends the
    wait at once as a PreconditionUnmet (the agent's own counters show it cannot deliver), instead of at the timeout."""
    started = time.monotonic()
    looked = [started]

    def attempt() -> T:
        try:
            return probe()
        except NotYet:
            if hopeless is not None and time.monotonic() - looked[0] >= HOPELESS_EVERY:
                looked[0] = time.monotonic()
                why = hopeless()
                if why:
                    raise PreconditionUnmet(hop, f"{what} after {time.monotonic() - started:.0f} s; {why}") from None
            raise
    return attempt


def follow(follower: Follower, line: CanaryLine, *, hop: str, what: str, wait: Wait, diagnose=None,
           hopeless: Callable[[], str | None] | None = None) -> Sighting:
    """Wait for the line: on the tail while it lasts, then by polling for what is left of the wait.

    hopeless() is asked every HOPELESS_EVERY seconds while the line is missing; a reason ends the wait at once
    (the agent's own counters show it cannot deliver), instead of at the timeout."""
    started = time.monotonic()
    if follower.tail is not None:
        try:
            return eventually(give_up_when_hopeless(follower.from_tail, hop=hop, what=what, hopeless=hopeless),
                              hop=hop, what=what, wait=TAIL_WAIT.with_(timeout=wait.timeout), diagnose=diagnose)
        except TailLost:
            pass
    left = max(0.0, wait.scaled() - (time.monotonic() - started)) / max(wait.scaled() / wait.timeout, 1e-9)
    polling = give_up_when_hopeless(lambda: follower.by_polling(line.emitted_at), hop=hop, what=what, hopeless=hopeless)
    return eventually(polling, hop=hop, what=what, wait=wait.with_(timeout=left), diagnose=diagnose)
