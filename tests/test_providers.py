"""The provider interface: kind, existing and endpoints clusters answer the same questions; checks never ask which."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from conformance.core.access import Access, DeclaredAbsent, ServiceAbsent
from conformance.core.providers import Endpoints, ExistingCluster, KindCluster, LogUnavailable, provider_of
from conformance.core.topology import load_topology

REPO = Path(__file__).resolve().parent.parent


def topology(tmp_path: Path, logs: bool):
    """A kind primary, an existing remote, and an endpoints remote (with or without its log files)."""
    files = ""
    if logs:
        (tmp_path / "grafana.log").write_text('logger=provisioning msg="finished"\n')
        (tmp_path / "prometheus.log").write_text('msg="Failed to send batch, retrying" url=http://x\n')
        files = """
            grafana_log: {file: grafana.log}
            prometheus_log: {file: prometheus.log}
            log_canary: {file: canary.log}"""
    path = tmp_path / "topology.yaml"
    path.write_text(textwrap.dedent("""
        clusters:
          - name: oke
            role: primary
            provider: kind
          - name: workstation
            role: remote
            provider: existing
            context: prod-east
          - name: edge
            role: remote
            provider: endpoints
            services:
              prometheus: {url: "http://127.0.0.1:1"}""") + textwrap.indent(textwrap.dedent(files), " " * 4) + "\n")
    topo = load_topology(path)
    return Access(topo), {c.name: c for c in topo.clusters}


def test_each_provider_of_the_topology_is_its_implementation(tmp_path):
    access, clusters = topology(tmp_path, logs=False)
    kinds = {name: type(provider_of(access, c)) for name, c in clusters.items()}
    assert kinds == {"oke": KindCluster, "workstation": ExistingCluster, "edge": Endpoints}


def test_providers_describe_how_the_run_reaches_them(tmp_path):
    access, clusters = topology(tmp_path, logs=False)
    assert provider_of(access, clusters["oke"]).describe() == "kind, context kind-oke"
    assert provider_of(access, clusters["workstation"]).describe() == "existing, context prod-east"
    assert provider_of(access, clusters["edge"]).describe() == "endpoints, 1 URL(s), no API server"


def test_an_endpoints_cluster_gives_its_logs_from_the_topologys_files(tmp_path):
    access, clusters = topology(tmp_path, logs=True)
    edge = provider_of(access, clusters["edge"])
    assert "finished" in edge.service_log("grafana")
    assert "Failed to send batch" in edge.service_log("prometheus", since_seconds=600)
    assert edge.canary_file() == tmp_path / "canary.log"


def test_an_endpoints_cluster_without_log_files_says_which_key_is_missing(tmp_path):
    access, clusters = topology(tmp_path, logs=False)
    edge = provider_of(access, clusters["edge"])
    with pytest.raises(LogUnavailable, match=r"no log source for grafana on cluster edge \(provider endpoints without "
                                             r"grafana_log\)"):
        edge.service_log("grafana")
    with pytest.raises(LogUnavailable, match="no log source for prometheus on cluster edge .*prometheus_log"):
        edge.service_log("prometheus")
    with pytest.raises(LogUnavailable, match="cluster edge has provider endpoints and no log_canary file"):
        edge.canary_file()


def test_an_endpoints_cluster_has_no_api_server_and_reaches_every_service_by_url(tmp_path):
    access, clusters = topology(tmp_path, logs=False)
    edge = provider_of(access, clusters["edge"])
    with pytest.raises(DeclaredAbsent, match="cluster edge has provider endpoints: no Kubernetes API access"):
        edge.kube()
    assert edge.url_endpoint("prometheus").via == "url"
    with pytest.raises(ServiceAbsent, match="edge sample client → helloworld: not in the topology"):
        edge.url_endpoint("helloworld")  # not observed (INCOMPLETE), never quietly not applicable


def test_a_kube_cluster_writes_its_canary_in_a_pod_and_reaches_services_through_its_api_server(tmp_path):
    access, clusters = topology(tmp_path, logs=False)
    remote = provider_of(access, clusters["workstation"])
    assert remote.canary_file() is None
    assert remote.url_endpoint("helloworld") is None


BRANCHES = ("has_kube", "log_canary_file", "grafana_log_file", "prometheus_log_file", "provider")


@pytest.mark.parametrize("folder", ["suites", "fixtures"])
def test_no_check_or_fixture_asks_which_provider_it_runs_on(folder):
    """The suites and fixtures reach clusters through the provider interface only (issue 18, item 4)."""
    asked = [f"{path.relative_to(REPO)}:{node.lineno} .{node.attr}"
             for path in sorted((REPO / folder).glob("*.py"))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Attribute) and node.attr in BRANCHES]
    assert asked == []


def test_the_inventory_opens_with_how_each_cluster_is_reached(tmp_path):
    from conformance.probes.inventory import described, lines
    access, _ = topology(tmp_path, logs=False)
    assert lines([], None, "promtail", described(access))[1:4] == [
        "  oke: primary, kind, context kind-oke",
        "  workstation: remote, existing, context prod-east",
        "  edge: remote, endpoints, 1 URL(s), no API server",
    ]
