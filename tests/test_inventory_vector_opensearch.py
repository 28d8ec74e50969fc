"""The inventory on the vector-opensearch profile (issue 20 item 4): OpenSearch, OpenSearch Dashboards and Vector each
asked their version where their own server says it, compared with stack/versions.yaml (Vector's pin is an image tag)."""

from __future__ import annotations

import pytest

from conformance.core.access import Access
from conformance.probes.inventory import Entry, drift, drift_failure, lines, take_inventory
from conformance.core.versions import load_versions
from conformance.core.topology import load_topology
from tests.fakes.kubeapi import FakeKubeAPI
from tests.fakes.server import FakeServer, Response
from tests.suite_runner import write_topology

VERSIONS = load_versions()
TAG = VERSIONS.apps["vector"]  # 0.56.0-distroless-libc: the chart's appVersion, the image tag


def opensearch_main(number: str) -> dict:
    """OpenSearch 3.6.0 GET / (RestMainAction → MainResponse.toXContent)."""
    return {"name": "opensearch-cluster-master-0", "cluster_name": "opensearch-cluster", "cluster_uuid": "u1",
            "version": {"distribution": "opensearch", "number": number, "build_type": "tar", "build_hash": "abc",
                        "build_date": "2026-01-01T00:00:00Z", "build_snapshot": False, "lucene_version": "10.3.1",
                        "minimum_wire_compatibility_version": "2.19.0",
                        "minimum_index_compatibility_version": "2.0.0"},
            "tagline": "The OpenSearch Project: https://opensearch.org/"}


def dashboards_status(number: str) -> dict:
    """OpenSearch Dashboards GET /api/status (src/core/server/status/routes/status.ts StatusHttpBody)."""
    return {"name": "opensearch-dashboards", "uuid": "u2",
            "version": {"number": number, "build_hash": "def", "build_number": 8000, "build_snapshot": False},
            "status": {"overall": {"state": "green"}}, "metrics": {}}


def vector_metrics(version: str) -> str:
    """Vector's prometheus_exporter sink serving internal_metrics (namespace vector): the heartbeat's build_info gauge,
    its labels in name order, rust_version before version."""
    return ("# HELP vector_build_info build_info\n# TYPE vector_build_info gauge\n"
            f'vector_build_info{{arch="x86_64",debug="false",revision="1a2b3c4 2026-03-01",rust_version="1.89",'
            f'version="{version}"}} 1 1764961200000\n'
            "# TYPE vector_component_sent_events_total counter\n"
            'vector_component_sent_events_total{component_id="opensearch",component_kind="sink"} 12\n')


def inventory_of(tmp_path, opensearch: Response | str, dashboards: Response, vector: Response) -> dict[str, Entry]:
    """The primary's inventory with the three services at the bring-up's names, answered as given (`opensearch` a
    URL: the Service proxies to that server)."""
    with FakeServer() as os_server, FakeServer() as osd_server, FakeServer() as vector_server, \
            FakeKubeAPI("oke") as api:
        os_server.route("GET", r"/", lambda request: opensearch)
        osd_server.route("GET", r"/api/status", lambda request: dashboards)
        vector_server.route("GET", r"/metrics", lambda request: vector)
        backend = opensearch if isinstance(opensearch, str) else os_server.url
        api.add_service("monitoring", "opensearch-cluster-master", ports=[
            {"name": "http", "port": 9200, "backend": backend}, {"name": "transport", "port": 9300}])
        api.add_service("monitoring", "opensearch-dashboards", osd_server.url, port=5601)
        api.add_service("monitoring", "vector", ports=[{"name": "api", "port": 8686},
                                                       {"name": "prom-exporter", "port": 9090,
                                                        "backend": vector_server.url}])
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        topology = write_topology(tmp_path, [{"name": "oke", "role": "primary", "provider": "existing",
                                              "context": "kind-oke", "kubeconfig": str(kubeconfig)}],
                                  profile="vector-opensearch")
        return {e.service: e for e in take_inventory(Access(load_topology(topology)))}


def test_each_is_asked_its_version_and_at_the_pins_there_is_no_drift(tmp_path):
    entries = inventory_of(tmp_path, Response(200, opensearch_main("3.6.0")), Response(200, dashboards_status("3.6.0")),
                           Response(200, vector_metrics("0.56.0"), "text/plain; version=0.0.4"))
    assert "loki" not in entries and "promtail" not in entries  # another profile's pipeline
    assert (entries["opensearch"].where, entries["opensearch"].version) == (
        "monitoring/opensearch-cluster-master:9200", "3.6.0")
    assert entries["opensearch-dashboards"].version == "3.6.0"
    assert (entries["vector"].where, entries["vector"].version) == ("monitoring/vector:9090", "0.56.0")
    text = lines(list(entries.values()), VERSIONS, "vector-opensearch")
    assert f"  {'oke vector':<24} monitoring/vector:9090 [bring-up name]  0.56.0" in text
    drift_rows = ("  oke vector:", "  oke opensearch:", "  oke opensearch-dashboards:")
    assert not any(line.startswith(drift_rows) for line in text)


def test_other_versions_are_drift_rows_and_vector_is_compared_by_its_tag_s_version_part(tmp_path):
    entries = inventory_of(tmp_path, Response(200, opensearch_main("2.19.1")),
                           Response(200, dashboards_status("3.6.0")), Response(200, vector_metrics("0.55.0")))
    mine = [entries[s] for s in ("opensearch", "opensearch-dashboards", "vector")]
    assert drift(mine, VERSIONS, "vector-opensearch") == [
        "  oke opensearch: pinned 3.6.0, running 2.19.1",
        f"  oke vector: pinned 0.56.0 (the version part of the image tag {TAG}), running 0.55.0"]
    failure = drift_failure("oke", mine, VERSIONS, "vector-opensearch")
    assert failure is not None and failure.headline == (
        "oke stack versions: 2 of its services differ from the pins of versions.yaml (the versions this suite was "
        f"proven at): opensearch: pinned 3.6.0, running 2.19.1; vector: pinned 0.56.0 (the version part of the image "
        f"tag {TAG}), running 0.55.0")
    assert "vector: monitoring/vector:9090 [bring-up name]" in failure.evidence


def test_an_answer_without_its_version_says_where_it_was_missing(tmp_path):
    entries = inventory_of(tmp_path, Response(503, "OpenSearch Security not initialized."),
                           Response(200, {"name": "osd", "status": {}}),
                           Response(200, "# TYPE vector_uptime_seconds gauge\nvector_uptime_seconds 12\n"))
    problem = entries["opensearch"].problem
    assert problem.startswith("oke OpenSearch GET ") and problem.endswith(
        "answered 503: OpenSearch Security not initialized."), problem
    assert entries["opensearch-dashboards"].problem == "/api/status does not say (KeyError: 'version')"
    assert entries["vector"].problem == "/metrics does not say (KeyError: 'vector_build_info')"
    rows = drift(list(entries.values()), VERSIONS, "vector-opensearch")
    assert f"  oke vector: pinned 0.56.0 (the version part of the image tag {TAG}), running version unknown" in rows


@pytest.mark.parametrize("labels", ['version="0.56.0",rust_version="1.89"', 'rust_version="1.89",version="0.56.0"',
                                    'version="0.56.0"'])
def test_the_version_label_is_read_not_one_ending_in_version(labels):
    from conformance.probes.inventory import BUILD_INFO

    assert BUILD_INFO["vector"][2](f"vector_build_info{{{labels}}} 1\n") == "0.56.0"


@pytest.mark.xdist_group("opensearch")
def test_a_real_opensearch_at_the_pin_answers_its_version_where_the_inventory_asks(tmp_path):
    """The real node built from org.opensearch:opensearch at the pin (tests/real/opensearch.py) through the Service."""
    from tests.proving_ground import free_port
    from tests.real import opensearch
    from tests.real.opensearch import OpenSearchNode

    node = OpenSearchNode(folder=tmp_path / "node", port=free_port(), transport_port=free_port(),
                          built=opensearch.require()).start()
    try:
        entries = inventory_of(tmp_path, node.url, Response(200, dashboards_status("3.6.0")),
                               Response(200, vector_metrics("0.56.0")))
    finally:
        node.stop()
    assert entries["opensearch"].version == VERSIONS.apps["opensearch"], entries["opensearch"]
    assert drift([entries["opensearch"]], VERSIONS, "vector-opensearch") == []
