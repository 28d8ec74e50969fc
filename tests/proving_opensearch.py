"""The vector-opensearch profile's proving ground: a REAL OpenSearch node (tests/real/opensearch.py), one FakeVector
per cluster tailing its canary file into it, and a FakeDashboards; the topology that points at them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


from tests import web
from tests.fakes.opensearch_dashboards import FakeDashboards
from tests.fakes.vector import FakeVector
from tests.suite_runner import SuiteRun, run_suites, write_topology

CLUSTERS = ("oke", "workstation")
CLUSTER_FIELD = "cluster"  # conformance/probes/logs/opensearch.py CLUSTER_FIELD: the profile's transform


def clear_logs(url: str) -> None:
    """Delete the node's logs-* indices one by one (no wildcard delete: action.destructive_requires_name)."""
    names = web.get(f"{url}/_cat/indices/logs-*", params={"h": "index", "format": "json"}, timeout=10).json()
    for row in names:
        web.delete(f"{url}/{row['index']}", timeout=30)


@dataclass
class OpenSearchStack:
    """Running fakes around the real node, and the topology that points at them."""

    folder: Path
    opensearch_url: str  # what the topology gives the suite (a closed port for "OpenSearch down")
    dashboards: FakeDashboards
    vectors: dict[str, FakeVector] = field(default_factory=dict)

    def log_file(self, cluster: str) -> Path:
        return self.folder / "logs" / f"{cluster}.log"

    def topology(self) -> Path:
        vectors = {c: v.metrics_url.removesuffix("/metrics") for c, v in self.vectors.items()}
        clusters = [
            {"name": "oke", "role": "primary", "provider": "endpoints",
             "services": {"opensearch": self.opensearch_url, "opensearch-dashboards": self.dashboards.url,
                          "vector": vectors["oke"]},
             "log_canary": {"file": str(self.log_file("oke"))}},
            {"name": "workstation", "role": "remote", "provider": "endpoints",
             "services": {"vector": vectors["workstation"]},
             "log_canary": {"file": str(self.log_file("workstation"))}},
        ]
        return write_topology(self.folder, clusters, "topology.yaml", "vector-opensearch")

    def run(self, *args: str) -> SuiteRun:
        return run_suites(self.folder, "--topology", str(self.topology()), "-m", "logs", *args)

    def __enter__(self) -> "OpenSearchStack":
        return self

    def __exit__(self, *exc: object) -> None:
        for v in self.vectors.values():
            v.stop()
        self.dashboards.stop()


def start_opensearch_stack(folder: Path, node_url: str, *, vector_urls: dict[str, str] | None = None,
                           fields: dict[str, dict] | None = None, opensearch_url: str | None = None,
                           api_version: str = "v8", prepare: Callable[[str], None] | None = None) -> OpenSearchStack:
    """FakeDashboards and a FakeVector per cluster into the node (vector_urls={cluster: URL} points one elsewhere;
    fields={cluster: {...}} replaces what its transform adds), each having shipped a start-up line first;
    prepare(node_url) runs once the logs-* indices are cleared, before any Vector starts."""
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    clear_logs(node_url)
    if prepare:
        prepare(node_url)
    stack = OpenSearchStack(folder, opensearch_url or node_url, FakeDashboards().start())
    for cluster in CLUSTERS:
        stack.log_file(cluster).touch()
        added = (fields or {}).get(cluster, {"cluster": cluster, "kubernetes": {"pod_name": "canary"}})
        url = (vector_urls or {}).get(cluster, node_url)
        stack.vectors[cluster] = FakeVector(url, stack.log_file(cluster), added, api_version=api_version).start()
        with stack.log_file(cluster).open("a") as f:
            f.write(f'level=info msg="{cluster} log agent started"\n')
    return stack
