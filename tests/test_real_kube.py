"""Real control planes (etcd, kube-apiserver 1.35, kcm, scheduler, kwok) in a network namespace of the test's own."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.real import netns
from tests.real.ground import require_namespace
from tests.real.kube import ControlPlane
from tests.real.registry import node_kubernetes_version

ADDRESSES = {"oke": "10.77.1.1", "workstation": "10.77.2.1"}
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


@pytest.fixture
def binaries() -> None:
    require_namespace(BINARIES)


@pytest.fixture
def ns(binaries) -> Iterator[netns.NetNamespace]:
    space = netns.NetNamespace(list(ADDRESSES.values()))
    yield space
    space.close()


def test_two_control_planes_start_serve_and_leave_nothing_behind(ns: netns.NetNamespace, tmp_path: Path) -> None:
    """Both clusters answer as Kubernetes 1.35 with kind's admin identity; stopped, nothing holds the namespace."""
    planes = {c: ControlPlane(c, ip, tmp_path / c) for c, ip in ADDRESSES.items()}
    pids: list[int] = []
    with ns:
        try:
            for plane in planes.values():
                plane.start()
                pids += [c.proc.pid for c in plane.components]
                print(f"{plane.name}: control plane up in {plane.started_seconds:.1f} s")
            for c, plane in planes.items():
                # CN=kubernetes-admin, O=kubeadm:cluster-admins: allowed by RBAC's binding, not by system:masters.
                with plane.http("admin") as api:
                    assert api.get("/version").json()["gitVersion"] == node_kubernetes_version() == "v1.35.0"
                    assert [n["metadata"]["name"] for n in api.get("/api/v1/nodes").json()["items"]] == [f"{c}-control-plane"]
                # Each cluster has its own CA, as kind's do: the other cluster's admin is a stranger here.
                other = planes["workstation" if c == "oke" else "oke"].pki
                with plane.http("admin", pki=other) as stranger:
                    assert stranger.get("/api/v1/namespaces").status_code == 401
        finally:
            for plane in planes.values():
                plane.stop()
    assert pids and not [pid for pid in pids if running(pid)]
    assert netns.holders(ns.id) == []


def test_deployment_scale_scheduling_kwok_lifecycle_and_deletion(ns: netns.NetNamespace, tmp_path: Path) -> None:
    """Scale makes pods (kcm), the scheduler binds them, kwok makes them Ready or CrashLoopBackOff; scale 0 deletes."""
    with ns:
        plane = ControlPlane("oke", ADDRESSES["oke"], tmp_path / "oke").start()
        try:
            with plane.http("admin") as api:
                exercise_lifecycle(api)
        finally:
            plane.stop()


def exercise_lifecycle(api: httpx.Client) -> None:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
              "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]}}}}
    assert api.post("/apis/apps/v1/namespaces/default/deployments", json=deploy).status_code == 201
    scale("web", 2, api)
    pods = wait(lambda: ready_pods(api, "app=web", 2), "2 Ready web pods")
    assert {p["spec"]["nodeName"] for p in pods} == {"oke-control-plane"}
    assert all(p["status"]["podIP"] for p in pods)
    reasons = {e["reason"] for e in api.get("/api/v1/namespaces/default/events").json()["items"]}
    assert {"Scheduled", "SuccessfulCreate"} <= reasons  # the scheduler's and the ReplicaSet controller's events
    crash = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "crasher", "namespace": "default", "labels": {"conformance.test/crashloop": "true"}},
             "spec": {"containers": [{"name": "c", "image": "registry.example/c:1"}]}}
    assert api.post("/api/v1/namespaces/default/pods", json=crash).status_code == 201
    state = wait(lambda: ((api.get("/api/v1/namespaces/default/pods/crasher").json()["status"]
                           .get("containerStatuses") or [{}])[0].get("state") or {}).get("waiting"), "CrashLoopBackOff")
    assert state["reason"] == "CrashLoopBackOff"
    scale("web", 0, api)
    wait(lambda: not api.get("/api/v1/namespaces/default/pods", params={"labelSelector": "app=web"}).json()["items"],
         "web pods deleted")


def scale(name: str, replicas: int, api: httpx.Client) -> None:
    r = api.patch(f"/apis/apps/v1/namespaces/default/deployments/{name}/scale", json={"spec": {"replicas": replicas}},
                  headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text


def running(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().split()[2] != "Z"
    except OSError:
        return False


def ready_pods(api: httpx.Client, selector: str, count: int) -> list[dict] | None:
    items = api.get("/api/v1/namespaces/default/pods", params={"labelSelector": selector}).json()["items"]
    ready = [p for p in items if any(c["type"] == "Ready" and c["status"] == "True"
                                     for c in p.get("status", {}).get("conditions", []))]
    return ready if len(ready) >= count else None


def wait(probe, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what}: not after {timeout} s")
