"""The topology loader: what users write, and a one-line error naming file and key for every mistake."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conformance.core.errors import ConfigError
from conformance.core.topology import load_topology

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "topology.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_default_kind_topology_has_oke_primary_and_workstation_remote():
    topo = load_topology(REPO / "kind" / "topology.yaml")
    assert topo.primary.name == "oke"
    assert [c.name for c in topo.remotes] == ["workstation"]
    assert {c.provider for c in topo.clusters} == {"kind"}
    # kind names its kubeconfig contexts kind-<cluster>.
    assert topo.primary.kube_context == "kind-oke"


def test_the_format_from_the_readme_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("PROM_TOKEN", "s3cret-token")
    path = write(tmp_path, """
        clusters:
          - name: oke
            role: primary
            provider: kind
          - name: workstation
            role: remote
            provider: existing
            context: kind-workstation
            services:
              prometheus:
                url: https://prom.workstation.example.com/
                auth: {bearer_env: PROM_TOKEN}
    """)
    topo = load_topology(path)
    remote = topo.cluster("workstation")
    assert remote.kube_context == "kind-workstation"
    override = remote.services["prometheus"]
    assert override.url == "https://prom.workstation.example.com"  # trailing slash dropped
    assert override.auth.headers() == {"Authorization": "Bearer s3cret-token"}


def test_endpoints_relative_paths_resolve_against_the_topology_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAFANA_PASSWORD", "pw")
    (tmp_path / "logs").mkdir()
    path = write(tmp_path, """
        clusters:
          - name: oke
            role: primary
            provider: endpoints
            services:
              prometheus: http://127.0.0.1:9090
              loki: http://127.0.0.1:3100
              grafana: {url: "http://127.0.0.1:3000", auth: {basic_user: admin, basic_password_env: GRAFANA_PASSWORD}}
            log_canary: {file: logs/canary.log}
          - name: workstation
            role: remote
            provider: endpoints
            services: {prometheus: "http://127.0.0.1:9091"}
            log_canary: {file: logs/remote.log}
    """)
    topo = load_topology(path)
    assert topo.primary.log_canary_file == tmp_path / "logs" / "canary.log"
    assert topo.primary.services["grafana"].auth.basic() == ("admin", "pw")
    assert not topo.primary.has_kube


BAD = [
    # (what the user wrote, the words the one-line error must contain)
    ("clusters: []", "clusters: expected a non-empty list"),
    ("clusters:\n  - {name: oke, role: primary, provider: kind, colour: red}", "clusters[0].colour: unknown key"),
    ("clusters:\n  - {name: oke, role: remote, provider: kind}", "no cluster has role: primary"),
    ("clusters:\n  - {name: a, role: primary, provider: kind}\n  - {name: b, role: primary, provider: kind}",
     "2 clusters have role: primary (a, b)"),
    ("clusters:\n  - {name: oke, role: primary, provider: minikube}", "clusters[0] (oke).provider: unknown provider 'minikube'"),
    ("clusters:\n  - {name: oke, role: boss, provider: kind}", "clusters[0] (oke).role: unknown role 'boss'"),
    ("clusters:\n  - {name: Oke_1, role: primary, provider: kind}", "clusters[0].name: expected a lowercase DNS label"),
    ("clusters:\n  - {name: oke, role: primary, provider: kind}\n  - {name: oke, role: remote, provider: kind}",
     "cluster name 'oke' is used more than once"),
    ("clusters:\n  - {name: oke, role: primary, provider: endpoints}", "clusters[0] (oke).services: provider endpoints needs services"),
    ("clusters:\n  - {name: oke, role: primary, provider: endpoints, services: {prometheus: 'not a url'}}",
     "clusters[0] (oke).services.prometheus.url: URL 'not a url' does not parse"),
    ("clusters:\n  - {name: oke, role: primary, provider: endpoints, services: {prometheus: 'ftp://x'}}",
     "services.prometheus.url: URL 'ftp://x' does not parse"),
    ("clusters:\n  - {name: oke, role: primary, provider: endpoints, services: {tempo: 'http://x'}}",
     "services.tempo: unknown service"),
    ("clusters:\n  - {name: oke, role: primary, provider: kind}\n  - {name: w, role: remote, provider: endpoints, services: {loki: 'http://x'}}",
     "clusters[1] (w).services.loki: loki runs on the primary only"),
    ("clusters:\n  - {name: oke, role: primary, provider: endpoints, services: {grafana: {url: 'http://x', auth: {password: hunter2}}}}",
     "services.grafana.auth.password: unknown key"),
    ("clusters:\n  - {name: oke, role: primary, provider: endpoints, services: {grafana: {url: 'http://x', auth: {bearer_env: NOPE_NOT_SET}}}}",
     "auth.bearer_env: environment variable NOPE_NOT_SET is not set"),
    ("clusters:\n  - {name: oke, role: primary, provider: existing}", "clusters[0] (oke).context: provider existing needs a kubeconfig context"),
    ("clusters:\n  - {name: oke, role: primary, provider: existing, kubeconfig: missing.yaml}", "clusters[0] (oke).kubeconfig: file"),
    ("clusters:\n  - {name: oke, role: primary, provider: endpoints, context: x, services: {prometheus: 'http://x'}}",
     "clusters[0] (oke).context: provider endpoints has no Kubernetes access"),
    ("clusters:\n  - {name: oke, role: primary, provider: endpoints, services: {prometheus: 'http://x'}, log_canary: {file: nowhere/x.log}}",
     "log_canary.file: folder"),
    ("clusters:\n  - {name: oke, role: primary, provider: kind, stack: mine}",
     "clusters[0] (oke).stack: unknown value 'mine'; expected one of bring-up, own"),
    ("clusters:\n  - {name: oke, role: primary, provider: kind, dashboards: []}",
     "clusters[0] (oke).dashboards: expected a non-empty list of dashboard uids or titles"),
    ("clusters: [ {name: oke", "not valid YAML at line"),
    ("- just a list", "expected a mapping with key 'clusters'"),
]


@pytest.mark.parametrize("text,words", BAD, ids=[w for _, w in BAD])
def test_bad_input_is_one_line_naming_the_file_and_key(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_topology(path)
    message = str(e.value)
    assert words in message
    assert message.startswith(f"topology {path}: ")
    assert "\n" not in message


def test_missing_topology_file_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"topology .*nope\.yaml: file not found"):
        load_topology(tmp_path / "nope.yaml")
