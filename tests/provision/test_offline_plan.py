"""--offline DIR is offline: charts, the Jaeger addon and dashboards from DIR, images and the node image from the
local docker; a plan that needs the network names every host first, and the preflight probes them (issue 22, item 4)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from conformance.provision import network, preflight, tools
from conformance.provision.plan import Options, up_plan
from conformance.core.versions import load_versions
from conformance.core.topology import PARTS, load_topology
from tests.provision.conftest import TOPOLOGY, make_offline_dir

ALL_PARTS = ",".join(PARTS)
CHART_HOSTS = ("metallb.github.io", "grafana.github.io", "prometheus-community.github.io", "kiali.org")


def offline_steps(folder: Path, profile: str | None, tmp_path: Path) -> list:
    topo = load_topology(TOPOLOGY).with_parts(list(PARTS)).with_profile(profile)
    return up_plan(Options(topology=topo, versions=load_versions(), cache_dir=tmp_path / "cache", offline=folder))


@pytest.mark.parametrize("profile", ["promtail", "alloy"])
def test_no_step_of_an_offline_plan_reaches_the_network(tmp_path, profile):
    steps = offline_steps(make_offline_dir(tmp_path / "offline"), profile, tmp_path)
    assert [s.title for s in steps if network.step_urls(s)] == []
    helm = [s for s in steps if "--install" in s.argv]
    assert helm and all(str(tmp_path / "offline" / "charts") in " ".join(s.argv) for s in helm)
    assert not any("--repo" in s.argv or any(a.startswith("oci://") for a in s.argv) for s in steps)


def test_the_offline_dry_run_says_so_first_and_fetches_nothing(provision, fakebin, tmp_path):
    folder = make_offline_dir(tmp_path / "offline")
    code, out = provision("up", "--dry-run", "--offline", str(folder), "--with", ALL_PARTS)
    assert code == 0 and fakebin.calls() == [], out
    first = out.splitlines()[0]
    assert "; offline: charts, manifests and dashboards from " in first and "(nothing is downloaded)" in first
    assert "  fetches (0): nothing" in out
    for network_word in ("--repo", "oci://", "raw.githubusercontent.com", "grafana.com"):
        assert network_word not in out, network_word
    assert f"apply --filename {folder / 'manifests' / 'jaeger.yaml'}" in out
    lines = out.splitlines()
    node = next(i for i, line in enumerate(lines) if "node image in the local docker" in line)
    create = next(i for i, line in enumerate(lines) if "create kind cluster" in line)
    assert node < create and "docker image inspect" in lines[node + 1]
    assert "kind load docker-image --name oke" in out, "offline implies --preload: the nodes pull nothing"


def test_a_plan_that_needs_the_network_names_every_host_in_its_first_line(provision, fakebin):
    code, out = provision("up", "--dry-run", "--with", ALL_PARTS)
    assert code == 0, out
    first = out.splitlines()[0]
    assert "; needs the network: " in first
    hosts = first.split("; needs the network: ", 1)[1].split(", ")
    for host in (*CHART_HOSTS, "raw.githubusercontent.com", "registry-1.docker.io", "grafana.com", "quay.io",
                 "ghcr.io", "registry.k8s.io", "dl.k8s.io", "get.helm.sh", "github.com", "kind.sigs.k8s.io"):
        assert host in hosts, host
    assert ("install kubernetes-event-exporter (events → oke Loki, cluster=oke) (oke): chart kubernetes-event-exporter "
            "3.0.2: oci://registry-1.docker.io/bitnamicharts/kubernetes-event-exporter") in out


def test_the_preflight_lists_the_fetches_and_probes_each_host_before_anything_starts(provision, fakebin, probes):
    probes.down = {"kiali.org"}
    code, out = provision("up", "--with", "tracing")
    assert code == 1, out
    assert "preflight: the plan fetches " in out
    assert "  - Jaeger (Istio's addon) (oke): jaeger.yaml: https://raw.githubusercontent.com/istio/istio/1.29.6/" in out
    probed = {u.split("/")[2] for u in probes}
    assert set(CHART_HOSTS) | {"raw.githubusercontent.com", "quay.io", "registry-1.docker.io"} <= probed
    assert ("  - cannot reach kiali.org (Name or service not known), needed for install kiali-operator (oke): "
            "chart kiali-operator 2.29.0; allow it, or bring up with --offline DIR") in out
    assert [c for c in fakebin.commands() if not c.startswith("docker ")] == [], "nothing started"


def test_an_unreachable_tool_host_is_only_a_warning(provision, fakebin, probes):
    probes.down = {"get.helm.sh"}
    code, out = provision("up")
    assert code == 0, out
    assert "warning: cannot reach get.helm.sh" in out and "needed for helm v3.19.0" in out


def test_an_offline_bring_up_probes_no_host_and_installs_from_the_folder(provision, fakebin, probes, tmp_path):
    folder = make_offline_dir(tmp_path / "offline")
    code, out = provision("up", "--offline", str(folder))
    assert code == 0, out
    assert probes == [] and out.startswith("offline: ")
    helm = [c for c in fakebin.commands() if c.startswith("helm") and "--install" in c]
    assert helm and all(f" {folder}/charts/" in c and "--repo" not in c for c in helm)


@pytest.mark.parametrize("leave_out, words", [
    ("kiali-operator-2.29.0.tgz", "kiali-operator-2.29.0.tgz missing (get it where there is network: helm pull "
                                  "kiali-operator --repo https://kiali.org/helm-charts --version 2.29.0 -d "),
    ("jaeger.yaml", "jaeger.yaml missing (get it where there is network: curl -fsSL -o "),
])
def test_a_missing_file_of_the_folder_is_one_line_naming_how_to_get_it(provision, fakebin, tmp_path, leave_out, words):
    folder = make_offline_dir(tmp_path / "offline", leave_out=(leave_out,))
    code, out = provision("up", "--dry-run", "--offline", str(folder), "--with", "tracing")
    assert code == 2 and out.count("\n") == 1 and out.startswith(f"error: --offline {folder}: ")
    assert words in out and fakebin.calls() == []


def test_an_archive_of_another_version_is_refused(provision, fakebin, tmp_path):
    folder = make_offline_dir(tmp_path / "offline")
    right = folder / "charts" / "metallb-0.15.3.tgz"
    (folder / "charts" / "metallb-0.15.2.tgz").write_bytes(right.read_bytes())
    other = make_offline_dir(tmp_path / "other")
    right.write_bytes((other / "charts" / "loki-stack-2.10.3.tgz").read_bytes())
    code, out = provision("up", "--dry-run", "--offline", str(folder))
    assert code == 2 and f"{right} holds loki-stack 2.10.3, not metallb 0.15.3" in out


def test_offline_tools_come_from_path_or_the_cache_never_a_download(tmp_path):
    tool = dataclasses.replace(load_versions().tools["kind"], name="kind-not-on-path")
    with pytest.raises(tools.ToolError) as e:
        tools.resolve(tool, tmp_path, "linux", "amd64", offline=True)
    assert "is neither on PATH nor in the cache and --offline downloads nothing; provide it by hand" in str(e.value)


def test_hosts_are_probed_at_once_so_the_preflight_stays_bounded(monkeypatch):
    """The evidence is a probe seeing another start while it is still running, not a wall-clock margin."""
    import itertools
    import threading

    from conformance.provision import preflight
    order, second_started, overlapped = itertools.count(), threading.Event(), []

    def probe(url: str) -> str | None:
        if next(order) == 0:
            overlapped.append(second_started.wait(30))  # one after the other, the second never starts meanwhile
        else:
            second_started.set()
        return "timed out" if "b3" in url else None

    monkeypatch.setattr(preflight, "probe", probe)
    needs = {f"https://b{i}.example/": [f"chart {i}"] for i in range(12)}
    problems: list[str] = []
    warnings: list[str] = []
    preflight.check_hosts(needs, {"https://tools.example/": ["kind v0.31.0"]}, problems, warnings)
    assert overlapped == [True], "the probes ran one after the other"
    assert problems == [preflight._unreachable("https://b3.example/", "timed out", ["chart 3"])]
    assert problems[0].startswith("cannot reach b3.example (timed out), needed for chart 3; allow it, or bring up with")
    assert warnings == []


def test_a_tool_is_probed_at_its_file_so_the_cdn_it_redirects_to_counts(provision, probes):
    code, out = provision("up")
    assert code == 0, out
    assert any(u.startswith("https://get.helm.sh/helm-v") and u.endswith(".tar.gz") for u in probes), list(probes)


def test_a_redirect_to_a_host_that_does_not_answer_names_that_host():
    """A release download answers with a redirect to its CDN; the CDN refusing is named, not the host asked."""
    import http.server
    import socket
    import threading

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802 (http.server's name)
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{closed}/release.tar.gz")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        why = preflight.probe(f"http://127.0.0.1:{server.server_address[1]}/download/v1/tool.tar.gz")
    finally:
        server.shutdown()
        server.server_close()
    assert why is not None and why.endswith(" at localhost, where it redirects"), why
