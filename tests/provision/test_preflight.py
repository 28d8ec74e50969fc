"""Preflight: each host problem is one line saying what to do, found well within 30 seconds."""

from __future__ import annotations

import json
import socket
import time
import xml.etree.ElementTree as ET

import pytest

from conformance.provision import preflight
from conformance.provision.clusters import load_kind_config

NO_ENGINE = {"tool": "docker", "match": ["info"], "exit": 1, "stdout": '{"ServerVersion": ""}',
             "stderr": "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n"}


def kind_config(tmp_path, port: int | None = None):
    path = tmp_path / "oke.yaml"
    mapping = f"\n    extraPortMappings:\n      - containerPort: 80\n        hostPort: {port}\n        listenAddress: 127.0.0.1" if port else ""
    path.write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking:\n  podSubnet: 10.10.0.0/16\n"
                    f"  serviceSubnet: 10.255.10.0/24\nnodes:\n  - role: control-plane{mapping}\n")
    return {"oke": load_kind_config(path)}


def host(proc, grafana_url: str, **kw) -> preflight.Host:
    return preflight.Host(proc=proc, grafana_url=grafana_url, **kw)


@pytest.fixture
def reachable(http_server) -> str:
    base, routes = http_server
    routes["/api/dashboards/1860"] = (200, b"{}", None)
    return f"{base}/api/dashboards/1860"


def test_a_healthy_host_passes(fakebin, fake_proc, reachable, tmp_path):
    assert preflight.run(kind_config(tmp_path), host(fake_proc, reachable)) == []


def problems(configs, h, offline: bool = False) -> list[str]:
    started = time.monotonic()
    with pytest.raises(preflight.PreflightFailed) as e:
        preflight.run(configs, h, offline=offline)
    assert time.monotonic() - started < 10, "preflight must finish well within 30 s"
    return e.value.problems


def test_no_docker_engine_says_start_docker_or_use_another_topology(fakebin, fake_proc, reachable, tmp_path):
    fakebin.scenario(NO_ENGINE)
    [problem] = problems(kind_config(tmp_path), host(fake_proc, reachable))
    assert "Docker engine not reachable (Cannot connect to the Docker daemon" in problem
    assert "start Docker" in problem and "provider existing or endpoints" in problem


def test_no_docker_command_at_all(monkeypatch, fake_proc, reachable, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    [problem] = problems(kind_config(tmp_path), host(fake_proc, reachable))
    assert problem.startswith("docker: command not found; install Docker")


def test_a_hung_docker_is_bounded(fakebin, fake_proc, reachable, tmp_path, monkeypatch):
    monkeypatch.setattr(preflight, "DOCKER_TIMEOUT", 0.5)
    fakebin.scenario({"tool": "docker", "match": ["info"], "sleep": 5})
    [problem] = problems(kind_config(tmp_path), host(fake_proc, reachable))
    assert "did not answer `docker info` within" in problem


@pytest.mark.parametrize("watches,instances,fix", [
    # Ubuntu's defaults: both too low for Promtail on two clusters (kind known-issues).
    ("8192", "128", "sudo sysctl fs.inotify.max_user_watches=524288 && sudo sysctl fs.inotify.max_user_instances=512"),
    # Only instances low: only its sysctl line is printed.
    ("524288", "128", "sudo sysctl fs.inotify.max_user_instances=512"),
])
def test_low_inotify_prints_the_sysctl_lines(fakebin, fake_proc, reachable, tmp_path, watches, instances, fix):
    (fake_proc / "sys/fs/inotify/max_user_watches").write_text(watches + "\n")
    (fake_proc / "sys/fs/inotify/max_user_instances").write_text(instances + "\n")
    [problem] = problems(kind_config(tmp_path), host(fake_proc, reachable))
    assert f"run: {fix} " in problem


def test_a_busy_host_port_names_the_port_and_the_config(fakebin, fake_proc, reachable, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        [problem] = problems(kind_config(tmp_path, port), host(fake_proc, reachable))
    assert f"host port 127.0.0.1:{port} (kind/oke.yaml) is in use" in problem


def test_ports_of_a_running_cluster_of_ours_are_not_a_conflict(fakebin, fake_proc, reachable, tmp_path):
    fakebin.existing_clusters("oke")  # its node container holds the port itself
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert preflight.run(kind_config(tmp_path, busy.getsockname()[1]), host(fake_proc, reachable)) == []


def test_too_little_memory_or_disk(fakebin, fake_proc, reachable, tmp_path):
    found = problems(kind_config(tmp_path), host(fake_proc, reachable, min_memory_gib=64, min_disk_gib=10**6))
    assert any("Docker has 16.0 GiB of memory" in p and "Settings > Resources" in p for p in found)
    assert any("free under" in p and "docker system prune" in p for p in found)


def test_grafana_com_unreachable_points_at_offline(fakebin, fake_proc, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/api/dashboards/1860"
    [problem] = problems(kind_config(tmp_path), host(fake_proc, url))
    assert "Grafana downloads its dashboards" in problem and "--offline DIR" in problem
    # With --offline the dashboards come from files: no need for grafana.com.
    assert preflight.run(kind_config(tmp_path), host(fake_proc, url), offline=True) == []


def test_up_without_docker_fails_at_preflight_with_junit_and_creates_nothing(provision, fakebin):
    fakebin.scenario(NO_ENGINE)
    started = time.monotonic()
    code, out = provision("up")
    assert time.monotonic() - started < 10
    assert code == 1
    assert out.startswith("needs the network: ")  # the plan's first line (issue 22)
    assert "\npreflight failed:\n  - Docker engine not reachable" in out
    assert "Traceback" not in out
    assert [c for c in fakebin.commands() if not c.startswith("docker info")] == []
    case = ET.parse(provision.junit).getroot().find("testsuite/testcase")
    assert case.get("name") == "preflight" and "start Docker" in case.find("failure").get("message")
    trace = json.loads((provision.reports / "trace.json").read_text())
    assert trace["failed_step"] == "preflight" and trace["phases"]["preflight"] < 10
