"""kiali: Kiali on the primary sees every cluster of the topology, their namespaces and the remote's workloads."""

from __future__ import annotations

import pytest

from conformance.eventually import NotYet, Wait, eventually
from conformance.hops import hop
from conformance.outcomes import Failed

pytestmark = pytest.mark.kiali

# Kiali refreshes its namespace and workload caches on a short interval; a minute covers a cold cache.
KIALI_WAIT = Wait(timeout=60, delay=0.5, max_delay=5)
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


def require_accessible(kiali, primary, cluster) -> dict:
    """The cluster's entry in Kiali's config; fails at once when absent or inaccessible."""
    clusters = kiali.clusters()
    entry = clusters.get(cluster.name)
    if entry is None:
        raise Failed(hop("kiali", cluster, primary), f"Kiali does not list cluster {cluster.name} (it lists: {', '.join(sorted(clusters)) or 'none'})",
                     home_hint(clusters, cluster) if cluster.is_primary else REMOTE_SECRET_HINT)
    if not entry.get("accessible"):
        raise Failed(hop("kiali", cluster, primary), f"Kiali lists {cluster.name} but cannot access it: {INACCESSIBLE_REASON}",
                     f"config entry: {entry}\n{REMOTE_SECRET_HINT}")
    return entry


@pytest.mark.hop("kiali[{cluster}]")  # Kiali unreachable: the namespaces and workloads checks stop at once
@pytest.mark.requirement("must")
def test_kiali_lists_every_cluster_accessible_with_the_primary_as_home(cluster, primary, kiali, record_property):
    """Kiali's config lists the cluster, accessible; the primary is Kiali's home."""
    entry = require_accessible(kiali, primary, cluster)
    record_property("kiali_api_endpoint", entry.get("apiEndpoint", ""))
    if bool(entry.get("isKialiHome")) != cluster.is_primary:
        expected = "home" if cluster.is_primary else "not home"
        raise Failed(hop("kiali", cluster, primary), f"Kiali marks {cluster.name} isKialiHome={entry.get('isKialiHome')}; expected {expected}",
                     f"config entry: {entry}")


@pytest.mark.hop(needs=["kiali[{cluster}]"])
@pytest.mark.requirement("must")
def test_kiali_lists_namespaces_of_the_cluster(cluster, primary, kiali, record_property):
    """Kiali's namespace list includes namespaces from the cluster."""
    require_accessible(kiali, primary, cluster)

    def probe():
        namespaces = [n["name"] for n in kiali.namespaces() if n.get("cluster") == cluster.name]
        if not namespaces:
            raise NotYet(f"no namespace with cluster={cluster.name} in /api/namespaces")
        return namespaces

    namespaces = eventually(probe, hop=hop("kiali", cluster, primary), what=f"no namespaces of {cluster.name}", wait=KIALI_WAIT)
    record_property("kiali_namespaces", len(namespaces))


@pytest.mark.hop(needs=["kiali[{remote}]"])
@pytest.mark.requirement("must")
def test_kiali_lists_the_remote_workloads(remote, primary, kiali, record_property):
    """Kiali lists workloads running in the remote cluster."""
    require_accessible(kiali, primary, remote)

    def probe():
        workloads = kiali.workloads(remote.name).get("workloads") or []
        if not workloads:
            raise NotYet(f"/api/clusters/workloads?clusterName={remote.name} lists no workloads")
        return workloads

    workloads = eventually(probe, hop=hop("kiali", remote, primary), what=f"no workloads of {remote.name}", wait=KIALI_WAIT)
    record_property("kiali_remote_workloads", len(workloads))
