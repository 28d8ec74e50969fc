"""kiali: Kiali on the primary sees every cluster of the topology, their namespaces and the remote's workloads.

A remote is judged by what Kiali can do with it, not by its `accessible` flag (real Kiali v2.29.0 keeps a remote
whose API server refuses its token listed accessible, its namespaces and workloads silently empty); with Kubernetes
access to the primary, a Kiali that does not answer is diagnosed from its pod, and the remote secret is read directly.
"""

from __future__ import annotations

import pytest

from conformance.core import timing
from conformance.core.eventually import NotYet, eventually
from conformance.core.hops import hop
from conformance.core.outcomes import Failed
from conformance.probes.kiali.clusters import (
    REMOTE_SECRET_HINT, kiali_clusters, kiali_service, missing_secret, require_accessible, stale_secret,
)
from conformance.probes.kiali.remote_secrets import loopback, remote_secrets

pytestmark = pytest.mark.kiali

KIALI_WAIT = timing.kiali_cached()


@pytest.mark.hop("kiali[{cluster}]")  # Kiali unreachable: the namespaces and workloads checks stop at once
@pytest.mark.requirement("must")
def test_kiali_lists_every_cluster_accessible_with_the_primary_as_home(cluster, primary, kiali, access, record_property):
    """Kiali's config lists the cluster, accessible and readable; the primary is Kiali's home."""
    entry = require_accessible(kiali, access, primary, cluster)
    record_property("kiali_api_endpoint", entry.get("apiEndpoint", ""))
    if bool(entry.get("isKialiHome")) != cluster.is_primary:
        expected = "home" if cluster.is_primary else "not home"
        raise Failed(hop("kiali", cluster, primary), f"Kiali marks {cluster.name} isKialiHome={entry.get('isKialiHome')}; expected {expected}",
                     f"config entry: {entry}")


@pytest.mark.hop(needs=["kiali[{cluster}]"])
@pytest.mark.requirement("must")
def test_kiali_lists_namespaces_of_the_cluster(cluster, primary, kiali, access, record_property):
    """Kiali's namespace list includes namespaces from the cluster."""
    require_accessible(kiali, access, primary, cluster)

    def probe():
        namespaces = [n["name"] for n in kiali.namespaces() if n.get("cluster") == cluster.name]
        if not namespaces:
            raise NotYet(f"no namespace with cluster={cluster.name} in /api/namespaces")
        return namespaces

    namespaces = eventually(probe, hop=hop("kiali", cluster, primary), what=f"no namespaces of {cluster.name}", wait=KIALI_WAIT)
    record_property("kiali_namespaces", len(namespaces))


@pytest.mark.hop(needs=["kiali[{remote}]"])
@pytest.mark.requirement("must")
def test_kiali_lists_the_remote_workloads(remote, primary, kiali, access, record_property):
    """Kiali lists workloads running in the remote cluster."""
    require_accessible(kiali, access, primary, remote)

    def probe():
        workloads = kiali.workloads(remote.name).get("workloads") or []
        if not workloads:
            raise NotYet(f"/api/clusters/workloads?clusterName={remote.name} lists no workloads")
        return workloads

    workloads = eventually(probe, hop=hop("kiali", remote, primary), what=f"no workloads of {remote.name}", wait=KIALI_WAIT)
    record_property("kiali_remote_workloads", len(workloads))


@pytest.mark.requirement("must")  # no hop needed: the secret is read on the primary whatever Kiali can do with it
def test_kiali_remote_secret_is_there_for_the_remote(remote, primary, kiali, access, record_property):
    """The primary holds the remote secret Kiali reads the remote by: one cluster, a server the pod can dial, the one
    Kiali serves; a remote Kiali still serves from a deleted secret is reported (gone at Kiali's next start)."""
    kube = access.kube(primary)  # provider endpoints: not applicable, the plugin says so
    spec = kiali_service(access, primary)
    entry = kiali_clusters(kiali, access, primary, remote).get(remote.name) or {}
    mine = [s for s in remote_secrets(kube, spec.namespace) if s.cluster == remote.name]
    if not mine:
        raise Failed(hop("kiali", remote, primary), missing_secret(remote.name, spec.namespace, entry), REMOTE_SECRET_HINT)
    secret = mine[0]
    record_property("kiali_remote_secret", str(secret))
    problem = secret.problem or ("its server is a loopback address: Kiali's pod would dial itself "
                                 "(see docs/troubleshooting.md#remote-secret-points-at-a-loopback-address)"
                                 if loopback(secret.server) else "")
    if problem:
        raise Failed(hop("kiali", remote, primary), f"remote secret {secret} for {remote.name}: {problem}", REMOTE_SECRET_HINT)
    served = entry.get("apiEndpoint")
    if entry.get("accessible") and served and served.rstrip("/") != secret.server.rstrip("/"):
        raise Failed(hop("kiali", remote, primary), stale_secret(remote.name, secret, served), REMOTE_SECRET_HINT)
