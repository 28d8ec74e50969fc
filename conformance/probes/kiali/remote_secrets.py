"""What the primary's API server says of Kiali: its remote secrets and, when Kiali does not answer, its pod.

kiali-operator v2.29.0 mounts every Secret of Kiali's namespace labelled `kiali.io/multiCluster=true` into the pod
(roles/default/kiali-deploy/tasks/main.yml "Autodetect remote cluster secrets"); Kiali reads them once, at start,
one cluster per data key, and exits at start when a remote's API server refuses its token or its connection
(recorded: `FTL failed to determine if *v1.Pod is namespaced: ...`, docs/real-stack.md, kiali).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import urlsplit

import yaml

from conformance.core import yamltext
from conformance.core.kube import KubeAccess
from conformance.core.pods import PodProblem, pod_problems
from conformance.core.redact import register_secret
from conformance.core.stack import StackService

REMOTE_SECRET_LABEL = "kiali.io/multiCluster=true"  # the Kiali CR's clustering.autodetect_secrets.label
CLUSTER_ANNOTATION = "kiali.io/cluster"
START_FATAL = "failed to determine if *v1.Pod is namespaced"  # cmd/server.go: the REST mapping over every client
ASKED_FOR_CREDENTIALS = "the server has asked for the client to provide credentials"  # client-go's text for a 401
LOOPBACK_HOSTS = ("localhost", "127.", "::1", "[::1]")
TAIL_LINES = 20


@dataclass(frozen=True)
class RemoteSecret:
    """One cluster of a Kiali remote secret: its data key (Kiali's name for the cluster) and kubeconfig's server."""

    namespace: str
    name: str
    cluster: str
    server: str
    problem: str = ""  # why Kiali cannot load it (cluster_secret.go: exactly one cluster, a user)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def remote_secrets(kube: KubeAccess, namespace: str) -> list[RemoteSecret]:
    """Every cluster of the Secrets the operator mounts into Kiali's pod, tokens registered for redaction."""
    listed = kube.call(f"list Kiali remote secrets in {namespace}", kube.core().list_namespaced_secret, namespace,
                       label_selector=REMOTE_SECRET_LABEL)
    return [remote for secret in listed.items for remote in _clusters(secret)]


def _clusters(secret) -> list[RemoteSecret]:
    """A remote per data key: Kiali names the cluster by the key (kubernetes/client_factory.go)."""
    meta = secret.metadata
    return [_parsed(meta.namespace, meta.name, key, base64.b64decode(raw).decode(errors="replace"))
            for key, raw in sorted((secret.data or {}).items())]


def _parsed(namespace: str, name: str, key: str, text: str) -> RemoteSecret:
    try:
        doc = yamltext.parse(text) or {}
    except yaml.YAMLError as e:
        return RemoteSecret(namespace, name, key, "", f"its kubeconfig is not YAML ({str(e).splitlines()[0]})")
    if not isinstance(doc, dict):
        return RemoteSecret(namespace, name, key, "", "its kubeconfig is not a mapping")
    for user in doc.get("users") or []:
        register_secret(str(((user or {}).get("user") or {}).get("token", "")))
    clusters = doc.get("clusters") or []
    if len(clusters) != 1:
        return RemoteSecret(namespace, name, key, "", f"its kubeconfig has {len(clusters)} clusters (Kiali needs exactly one)")
    server = str(((clusters[0] or {}).get("cluster") or {}).get("server", ""))
    if not doc.get("users"):
        return RemoteSecret(namespace, name, key, server, "its kubeconfig has no user")
    return RemoteSecret(namespace, name, key, server)


def loopback(server: str) -> bool:
    """True when the server is the pod itself (kind's local kubeconfig: 127.0.0.1)."""
    host = urlsplit(server).hostname or ""
    return host.startswith(LOOPBACK_HOSTS) or host == "::1"


@dataclass(frozen=True)
class KialiPod:
    """Kiali's pod as the API server shows it: what keeps it from Ready and its container's last log line."""

    name: str
    problems: tuple[PodProblem, ...]
    last_line: str

    @property
    def state(self) -> str:
        return "; ".join(str(p) for p in self.problems) or f"{self.name} Running and Ready"

    @property
    def summary(self) -> str:
        """E.g. `monitoring/kiali-x CrashLoopBackOff, 3 restarts`: the first problem without its message."""
        first = self.problems[0]
        return f"{first.namespace}/{first.pod} {first.reason}" + (f", {first.restarts} restarts" if first.restarts else "")


def kiali_pod(kube: KubeAccess, spec: StackService) -> KialiPod | None:
    """The first pod of Kiali's Deployment, None when there is none."""
    core = kube.core()
    pods = kube.call("list Kiali pods", core.list_namespaced_pod, spec.namespace, label_selector=spec.pod_selector).items
    if not pods:
        return None
    pod = pods[0]
    log = kube.call("read Kiali's log", core.read_namespaced_pod_log, pod.metadata.name, spec.namespace,
                    container=spec.container, tail_lines=TAIL_LINES, ok=(400,)) or ""
    lines = [line for line in log.splitlines() if line.strip()]
    return KialiPod(pod.metadata.name, tuple(pod_problems(pod)), lines[-1] if lines else "")


def last_line_about(kube: KubeAccess, spec: StackService, cluster: str) -> str:
    """Kiali's last log line naming `cluster [<name>]` (e.g. `Error fetching Namespaces for cluster [x]: Unauthorized`)."""
    core = kube.core()
    pods = kube.call("list Kiali pods", core.list_namespaced_pod, spec.namespace, label_selector=spec.pod_selector).items
    for pod in pods[:1]:
        log = kube.call("read Kiali's log", core.read_namespaced_pod_log, pod.metadata.name, spec.namespace,
                        container=spec.container, tail_lines=200, ok=(400,)) or ""
        about = [line for line in log.splitlines() if f"cluster [{cluster}]" in line]
        return about[-1] if about else ""
    return ""


def start_cause(last_line: str, secrets: list[RemoteSecret]) -> tuple[RemoteSecret | None, str]:
    """(the remote secret to blame, why) for Kiali's fatal start line; (None, "") when the line is not that one."""
    if START_FATAL not in last_line:
        return None, ""
    if ASKED_FOR_CREDENTIALS in last_line:
        named = secrets[0] if len(secrets) == 1 else None
        which = f"remote secret {named}" if named else "a remote secret (" + ", ".join(str(s) for s in secrets) + ")"
        return named, (f"a remote API server refuses the token in {which}: Kiali builds its REST mapping over every "
                       "cluster at start and exits when one refuses its credentials")
    named = next((s for s in secrets if s.server and s.server.rstrip("/") in last_line), None)
    where = f"the server of remote secret {named} ({named.server})" if named else "a remote secret's server"
    return named, f"Kiali cannot reach {where} at start and exits"


def unknown_cluster(name: str, clusters: dict[str, dict], topology_names: list[str], servers: dict[str, str],
                    source: str) -> str:
    """Why a topology cluster is not among Kiali's configured clusters (its /api/config `clusters`), naming where
    they were read: Kiali knows its API server under another name, or which of Kiali's clusters no topology names."""
    said = f"Kiali does not list cluster {name} (it lists: {', '.join(sorted(clusters)) or 'none'}), read from {source}"
    server = (servers.get(name) or "").rstrip("/")
    alias = next((k for k, e in sorted(clusters.items())
                  if server and str(e.get("apiEndpoint") or "").rstrip("/") == server and k != name), None)
    if alias:
        return (f"{said}: Kiali knows its API server {server} as cluster {alias}; the topology's cluster names must be "
                "Istio's and Kiali's (the remote secret's data key, kubernetes_config.cluster_name for the home)")
    strangers = sorted(k for k in clusters if k not in topology_names)
    if strangers:
        return f"{said}; Kiali's clusters the topology does not name: {', '.join(strangers)}"
    return said
