"""conformance/probes/kiali/remote_secrets.py: the remote secret as Kiali loads it, and the cause read from Kiali's fatal start line."""

from __future__ import annotations

import yaml

from conformance.probes.kiali.remote_secrets import RemoteSecret, _parsed, loopback, start_cause

SECRET = RemoteSecret("monitoring", "kiali-remote-cluster-secret-workstation", "workstation", "https://172.18.0.3:6443")
# The two fatal lines a real Kiali v2.29.0 printed (../shared/contracts/kiali-2.29.0 README, the at-start scenarios).
FTL = "2026-01-01T00:00:00Z FTL failed to determine if *v1.Pod is namespaced: failed to get restmapping: failed to get server groups: "


def kubeconfig(clusters: int = 1, users: int = 1) -> str:
    return yaml.safe_dump({"clusters": [{"name": f"c{i}", "cluster": {"server": "https://172.18.0.3:6443"}} for i in range(clusters)],
                           "users": [{"name": "u", "user": {"token": "t" * 20}} for _ in range(users)]})


def test_a_refused_token_at_start_blames_the_remote_secrets_credentials() -> None:
    blamed, cause = start_cause(FTL + "the server has asked for the client to provide credentials", [SECRET])
    assert blamed == SECRET
    assert cause.startswith("a remote API server refuses the token in remote secret monitoring/kiali-remote-cluster-secret-workstation")


def test_a_refused_connection_at_start_names_the_secret_whose_server_it_is() -> None:
    line = FTL + 'Get "https://172.18.0.3:6443/api": dial tcp 172.18.0.3:6443: connect: connection refused'
    other = RemoteSecret("monitoring", "kiali-remote-cluster-secret-other", "other", "https://172.18.0.9:6443")
    blamed, cause = start_cause(line, [other, SECRET])
    assert blamed == SECRET
    assert cause == ("Kiali cannot reach the server of remote secret monitoring/kiali-remote-cluster-secret-workstation "
                     "(https://172.18.0.3:6443) at start and exits")


def test_another_last_line_blames_no_secret() -> None:
    assert start_cause("2026-01-01T00:00:00Z ERR Unable to connect to Prometheus", [SECRET]) == (None, "")


def test_a_kubeconfig_kiali_cannot_load_says_why() -> None:
    assert _parsed("monitoring", "s", "workstation", kubeconfig()).problem == ""
    assert _parsed("monitoring", "s", "workstation", kubeconfig(clusters=2)).problem == \
        "its kubeconfig has 2 clusters (Kiali needs exactly one)"
    assert _parsed("monitoring", "s", "workstation", kubeconfig(users=0)).problem == "its kubeconfig has no user"
    assert _parsed("monitoring", "s", "workstation", "{").problem.startswith("its kubeconfig is not YAML")


def test_loopback_servers() -> None:
    assert loopback("https://127.0.0.1:6443") and loopback("https://localhost:6443") and loopback("https://[::1]:6443")
    assert not loopback("https://172.18.0.3:6443")


# Kiali's configured clusters (/api/config `clusters`, shapes of /work/shared/contracts/kiali-2.29.0 golden.json).
KIALI_CLUSTERS = {
    "oke": {"accessible": True, "apiEndpoint": "https://10.96.0.1:443", "isKialiHome": True, "name": "oke",
            "secretName": ""},
    "cluster2": {"accessible": True, "apiEndpoint": "https://10.77.2.1:6443", "isKialiHome": False,
                 "name": "cluster2", "secretName": "kiali-remote-cluster-secret-cluster2"},
}
SOURCE = "Kiali istio-system/kiali:20001/kiali /api/config (labels app.kubernetes.io/name=kiali)"


def test_a_topology_cluster_kiali_knows_by_its_api_server_under_another_name():
    from conformance.probes.kiali.remote_secrets import unknown_cluster
    said = unknown_cluster("workstation", KIALI_CLUSTERS, ["oke", "workstation"],
                           {"workstation": "https://10.77.2.1:6443/"}, SOURCE)
    assert said == ("Kiali does not list cluster workstation (it lists: cluster2, oke), read from " + SOURCE +
                    ": Kiali knows its API server https://10.77.2.1:6443 as cluster cluster2; the topology's cluster "
                    "names must be Istio's and Kiali's (the remote secret's data key, kubernetes_config.cluster_name "
                    "for the home)")


def test_a_topology_cluster_kiali_does_not_know_names_kiali_s_others():
    from conformance.probes.kiali.remote_secrets import unknown_cluster
    said = unknown_cluster("workstation", KIALI_CLUSTERS, ["oke", "workstation"], {}, "http://kiali.example/api/config")
    assert said == ("Kiali does not list cluster workstation (it lists: cluster2, oke), read from "
                    "http://kiali.example/api/config; Kiali's clusters the topology does not name: cluster2")


def test_kiali_with_no_cluster_at_all():
    from conformance.probes.kiali.remote_secrets import unknown_cluster
    assert unknown_cluster("oke", {}, ["oke"], {}, "X") == "Kiali does not list cluster oke (it lists: none), read from X"
