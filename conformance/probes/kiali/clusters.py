"""What the Kiali checks read of each cluster: Kiali's config entry for it, why it is missing or unreadable, and, with
Kubernetes access to the primary, Kiali's pod and the remote secret (conformance/probes/kiali/remote_secrets.py)."""

from __future__ import annotations

from conformance.core.hops import hop
from conformance.core.http import ServiceError
from conformance.core.outcomes import Failed, Unobservable
from conformance.core.stack import StackService
from conformance.probes.kiali.remote_secrets import (
    RemoteSecret, kiali_pod, last_line_about, remote_secrets, start_cause, unknown_cluster,
)

REMOTE_SECRET_HINT = ("Kiali reaches a remote through a Secret in its namespace labelled kiali.io/multiCluster=true, "
                      "annotated kiali.io/cluster=<name>, whose kubeconfig has exactly one cluster named <name> "
                      "and a non-loopback server; the operator reads it on reconcile "
                      "(see docs/troubleshooting.md#kiali-cannot-reach-the-remote-cluster)")

# Kiali v2.29.0 (istio/discovery.go Clusters) marks a cluster accessible:false only when the Kiali CR declares
# it in clustering.clusters without a secret_name; its workloads call answers 200 with nothing, so it has no words.
INACCESSIBLE_REASON = "Kiali has no kubeconfig for it (a clustering.clusters entry without secret_name, and no remote secret)"


def home_hint(clusters: dict[str, dict], primary) -> str:
    """Why the primary is missing: Kiali lists its home cluster under another name."""
    home = next((name for name, entry in clusters.items() if entry.get("isKialiHome")), None)
    if home is None:
        return REMOTE_SECRET_HINT
    return (f"Kiali calls its home cluster {home}: kubernetes_config.cluster_name in the Kiali CR must be "
            f"{primary.name}, Istio's name for it (Kiali falls back to \"Kubernetes\" when it cannot detect it)")


def kiali_service(access, primary) -> StackService:
    """Where Kiali runs on the primary, as found (its namespace holds the remote secrets); the bring-up's row else."""
    return access.service_spec(primary, "kiali")


def config_source(kiali, access, primary) -> str:
    """Where Kiali's configured clusters were read: its /api/config, at the topology's URL or the Service found."""
    if "kiali" not in primary.services:
        try:
            found = access.located(primary, "kiali")
            return f"Kiali {found.where}{found.spec.web_root} /api/config ({found.how})"
        except Unobservable:
            pass
    return f"{kiali.http.base_url}/api/config"


def api_servers(access) -> dict[str, str]:
    """Each topology cluster's API server as this run reaches it (to match Kiali's apiEndpoint), where it has one."""
    out = {}
    for c in access.topology.clusters:
        try:
            out[c.name] = access.kube(c).server
        except (Unobservable, ServiceError):  # provider endpoints or an unusable kubeconfig: nothing to match
            continue
    return out


def primary_kube(access, primary):
    """The primary's API server, or None when this run has none (provider endpoints, or no access)."""
    try:
        return access.kube(primary)
    except Unobservable:
        return None


def kiali_clusters(kiali, access, primary, cluster) -> dict[str, dict]:
    """Kiali's clusters; when Kiali does not answer, its pod says why (with Kubernetes access), else the error stands."""
    try:
        return kiali.clusters()
    except ServiceError as error:
        diagnose_kiali_down(access, primary, cluster, error)
        raise


def diagnose_kiali_down(access, primary, cluster, error: ServiceError) -> None:
    """Fails at once when Kiali's pod is not Ready: its state, restarts and last log line, and the remote secret
    when the line says a remote stopped Kiali's start; returns when the pod cannot be seen or looks healthy."""
    kube = primary_kube(access, primary)
    if kube is None:
        return
    spec = kiali_service(access, primary)
    try:
        pod = kiali_pod(kube, spec)
        secrets = remote_secrets(kube, spec.namespace) if pod and pod.problems else []
    except ServiceError:
        return  # the run may not read pods or secrets there: the unreachable Kiali stands as it is
    if pod is None or not pod.problems:
        return
    blamed, cause = start_cause(pod.last_line, secrets)
    where = hop("kiali", cluster_named(access, blamed.cluster) or cluster, primary) if blamed else hop("kiali", cluster, primary)
    diagnosis = f"Kiali does not start ({pod.summary})" + (f": {cause}" if cause else f": {pod.last_line or pod.state}")
    evidence = "\n".join(x for x in (f"last log line: {pod.last_line}" if pod.last_line else "", f"pod: {pod.state}",
                                      error.headline, REMOTE_SECRET_HINT if blamed or cause else "") if x)
    raise Failed(where, diagnosis, evidence, final=True)


def cluster_named(access, name: str):
    return next((c for c in access.topology.clusters if c.name == name), None)


def require_readable(kiali, access, primary, cluster, entry: dict) -> None:
    """A listed remote Kiali cannot read (no namespace of it, no Kubernetes-<name> in /api/status) fails at once."""
    if cluster.is_primary or any(n.get("cluster") == cluster.name for n in kiali.namespaces()):
        return
    versions = [s.get("name") for s in kiali.status().get("externalServices") or []]
    if f"Kubernetes-{cluster.name}" in versions:
        return  # its client answers: the namespace cache may still be filling
    secret = entry.get("secretName") or "(none)"
    raise Failed(hop("kiali", cluster, primary),
                 f"Kiali lists {cluster.name} but cannot read it (no namespace of it, no Kubernetes-{cluster.name} in "
                 f"/api/status): {entry.get('apiEndpoint') or 'its API server'} refuses or does not answer the "
                 f"credentials in remote secret {secret}",
                 "\n".join(x for x in (kiali_log_about(access, primary, cluster), f"config entry: {entry}",
                                       "the token's Secret on the remote deleted or rotated, or its role too narrow "
                                       "(see docs/troubleshooting.md#token-rejected-401-unauthorized)", REMOTE_SECRET_HINT) if x),
                 final=True)


def kiali_log_about(access, primary, cluster) -> str:
    """Kiali's last log line about the cluster, when this run can read Kiali's log."""
    kube = primary_kube(access, primary)
    try:
        line = last_line_about(kube, kiali_service(access, primary), cluster.name) if kube else ""
    except ServiceError:
        return ""
    return f"Kiali's log: {line}" if line else ""


def require_accessible(kiali, access, primary, cluster) -> dict:
    """The cluster's entry in Kiali's config; fails at once when absent, inaccessible or unreadable."""
    clusters = kiali_clusters(kiali, access, primary, cluster)
    entry = clusters.get(cluster.name)
    if entry is None:
        names = [c.name for c in access.topology.clusters]
        said = unknown_cluster(cluster.name, clusters, names, api_servers(access), config_source(kiali, access, primary))
        raise Failed(hop("kiali", cluster, primary), said,
                     home_hint(clusters, cluster) if cluster.is_primary else REMOTE_SECRET_HINT)
    if not entry.get("accessible"):
        raise Failed(hop("kiali", cluster, primary), f"Kiali lists {cluster.name} but cannot access it: {INACCESSIBLE_REASON}",
                     f"config entry: {entry}\n{REMOTE_SECRET_HINT}")
    require_readable(kiali, access, primary, cluster, entry)
    return entry


def missing_secret(name: str, namespace: str, entry: dict) -> str:
    """No secret for the remote; when Kiali still serves it, say so: the operator drops it at Kiali's next start."""
    absent = f"no Secret labelled kiali.io/multiCluster=true in {namespace} has a key {name}"
    if entry.get("accessible") and entry.get("secretName"):
        return (f"Kiali still serves {name} from remote secret {namespace}/{entry['secretName']}, which is gone "
                f"({absent}): Kiali read it at start; the operator drops {name} at Kiali's next restart "
                "(see docs/troubleshooting.md#kiali-serves-a-cluster-whose-remote-secret-is-gone)")
    return f"no remote secret for {name}: {absent}"


def stale_secret(name: str, secret: RemoteSecret, served: str) -> str:
    return (f"Kiali serves {name} at {served}, but remote secret {secret} now says {secret.server}: Kiali reads the "
            "secret at start only; the operator rolls Kiali out on its next reconcile")
