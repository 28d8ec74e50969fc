"""Contract tests of FakeKubeAPI: real paths, shapes, Status bodies, proxy, lifecycle and faults.

What the real control plane shows is held there instead (tests/test_real_kube*.py: kube-apiserver 1.35, etcd, kcm,
scheduler, kwok): a refused token or certificate's 401 and RBAC's Forbidden texts for services/proxy and a pod list
(test_real_kube, test_real_kube_suites); the service proxy forwarding the checks' GETs and POSTs to every service (every
area passes through it) and its 503 once a Service has no ready endpoint (the Loki pod deleted); pods listed by label,
the Secrets, Services and nodes the checks read; a crash-looping pod's previous log; a Deployment's scale read and
patched up and back to 0, its pods made and deleted (the traffic generator, test_real_kube's lifecycle).
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests import web
from tests.fakes import kube_objects as ko
from tests.fakes.kubeapi import WATCH_REFUSED, FakeKubeAPI
from tests.fakes.server import FakeServer, Request, Response


# -- fixtures ---------------------------------------------------------------------------


def _echo(request: Request) -> Response:
    """A backend that reports what reached it."""
    return Response(200, {"method": request.method, "path": request.path, "query": request.raw_query,
                          "body": request.body.decode(), "content_type": request.headers.get("Content-Type"),
                          "headers": {k.lower(): v for k, v in request.headers.items()}})


@pytest.fixture(scope="module")
def backend() -> Iterator[FakeServer]:
    server = FakeServer()
    server.route("GET", "/boom", lambda r: Response(500, "backend failed\n", "text/plain"))
    for method in ("GET", "POST", "PUT", "DELETE"):
        server.route(method, "/.*", _echo)
    with server:
        yield server


@pytest.fixture(scope="module")
def shared_kube() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI(pod_start_delay=0.15, pod_run_time=0.15, pod_delete_delay=0.05,
                     namespace_delete_delay=0.2) as api:
        yield api


@pytest.fixture
def kube(shared_kube: FakeKubeAPI) -> Iterator[FakeKubeAPI]:
    """The shared fake with every fault switch reset after the test."""
    yield shared_kube
    shared_kube.denials.clear()
    shared_kube.anonymous_auth = False
    shared_kube.image_pull_errors.clear()
    shared_kube.removed_groups.clear()
    shared_kube.on_pod_started = None
    shared_kube.hook_errors.clear()


@pytest.fixture
def ns(kube: FakeKubeAPI) -> str:
    """A fresh namespace per test."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kube.add_namespace(name)
    return name


@pytest.fixture
def api_client(kube: FakeKubeAPI, tmp_path: Path) -> client.ApiClient:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    return config.new_client_from_config(config_file=str(kubeconfig), context="kind-oke")


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def http(kube: FakeKubeAPI) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=kube.url, headers={"Authorization": f"Bearer {kube.token}"}) as c:
        yield c


def wait_for(predicate: Callable[[], object], timeout: float = 2.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not reached in time")


def status_of(exc: ApiException) -> dict:
    return json.loads(exc.body)


def echo_pod(name: str, script: str, restart: str = "Never", image: str = "busybox:1.36") -> dict:
    return {"metadata": {"name": name, "labels": {"app": "canary"}},
            "spec": {"restartPolicy": restart, "containers": [{"name": "c", "image": image, "command": ["sh", "-c", script]}]}}


# -- kubeconfig, discovery, wire format --------------------------------------------------


def test_kubeconfig_merges_two_clusters(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    with FakeKubeAPI("oke") as oke, FakeKubeAPI("workstation") as ws:
        oke.write_kubeconfig(path)
        ws.write_kubeconfig(path)
        for ctx, fake in (("kind-oke", oke), ("kind-workstation", ws)):
            nodes = client.CoreV1Api(config.new_client_from_config(str(path), context=ctx)).list_node()
            assert [n.metadata.name for n in nodes.items] == [f"{fake.cluster}-control-plane"]
        assert config.list_kube_config_contexts(str(path))[1]["name"] == "kind-oke"


def test_version_and_discovery(api_client: client.ApiClient, http: httpx.Client) -> None:
    assert client.VersionApi(api_client).get_code().git_version == "v1.33.1"
    assert http.get("/api").json()["versions"] == ["v1"]
    groups = {g["name"]: g["preferredVersion"]["version"] for g in http.get("/apis").json()["groups"]}
    assert groups == {"apps": "v1", "monitoring.coreos.com": "v1", "kiali.io": "v1alpha1"}
    assert [r["name"] for r in http.get("/apis/apps/v1").json()["resources"]] == ["deployments", "deployments/scale"]
    names = [r["name"] for r in http.get("/apis/monitoring.coreos.com/v1").json()["resources"]]
    assert names == ["servicemonitors", "podmonitors", "prometheuses", "alertmanagers"]


def test_bodies_are_compact_json_with_newline(http: httpx.Client) -> None:
    r = http.get("/api/v1/namespaces/default")
    assert r.headers["content-type"] == "application/json"
    assert r.text.endswith("}\n") and ", " not in r.text and '"kind":"Namespace"' in r.text


# -- authentication and authorization ----------------------------------------------------


def test_anonymous_auth_reads_version_only(kube: FakeKubeAPI) -> None:
    kube.anonymous_auth = True
    assert web.get(kube.url + "/version").status_code == 200
    r = web.get(kube.url + "/api/v1/namespaces/monitoring/pods")
    assert r.status_code == 403
    assert r.json()["message"] == ('pods is forbidden: User "system:anonymous" cannot list resource "pods" '
                                   'in API group "" in the namespace "monitoring"')
    assert web.get(kube.url + "/api").json()["message"] == 'forbidden: User "system:anonymous" cannot get path "/api"'


# -- service proxy --------------------------------------------------------------------------


@pytest.fixture
def proxied(kube: FakeKubeAPI, backend: FakeServer, ns: str) -> str:
    kube.add_service(ns, "prom", backend.url, port=9090, port_name="http-web")
    kube.add_service(ns, "kiali", ports=[{"name": "http", "port": 20001, "backend": backend.url},
                                          {"name": "http-metrics", "port": 9090}])
    kube.add_service(ns, "plain", backend.url, port=3100, port_name="")
    return ns


def test_proxy_keeps_web_root_and_relays_status(http: httpx.Client, proxied: str, kube: FakeKubeAPI,
                                                 backend: FakeServer) -> None:
    assert http.get(f"/api/v1/namespaces/{proxied}/services/kiali:20001/proxy/kiali/api/status").json()["path"] == \
        "/kiali/api/status"
    kube.set_backend(proxied, "plain", backend.url)
    r = http.get(f"/api/v1/namespaces/{proxied}/services/plain/proxy/boom")  # unnamed port: bare name works
    assert (r.status_code, r.text, r.headers["content-type"]) == (500, "backend failed\n", "text/plain")


def test_proxy_empty_path_redirects(http: httpx.Client, proxied: str) -> None:
    r = http.get(f"/api/v1/namespaces/{proxied}/services/prom:9090/proxy?a=1")
    assert (r.status_code, r.headers["location"]) == (301, f"/api/v1/namespaces/{proxied}/services/prom:9090/proxy/?a=1")


PROXY_ERRORS = [  # (service id in the proxy path, status, reason, message) on the `proxied` services
    ("nope:9090", 404, "NotFound", 'services "nope" not found'),
    ("nope:http", 404, "NotFound", 'endpoints "nope" not found'),
    ("nope", 404, "NotFound", 'endpoints "nope" not found'),
    ("prom:9999", 503, "ServiceUnavailable", 'no service port 9999 found for service "prom"'),
    ("prom:metrics", 503, "ServiceUnavailable", 'no endpoints available for service "prom:metrics"'),
    ("prom", 503, "ServiceUnavailable", 'no endpoints available for service "prom"'),
    ("kiali:http-metrics", 503, "ServiceUnavailable", 'no endpoints available for service "kiali:http-metrics"'),
    ("ftp:prom:9090", 400, "BadRequest", 'invalid service request "ftp:prom:9090"'),
    ("https:prom:9090", 503, "ServiceUnavailable",
     "error trying to reach service: tls: first record does not look like a TLS handshake"),
]


def test_proxy_errors(http: httpx.Client, proxied: str) -> None:
    wrong = {}
    for service_id, code, reason, message in PROXY_ERRORS:
        r = http.get(f"/api/v1/namespaces/{proxied}/services/{service_id}/proxy/")
        body = r.json()
        if (got := (r.status_code, body["code"], body["reason"], body["message"])) != (code, code, reason, message):
            wrong[service_id] = got
    assert not wrong, wrong


def test_stack_services(kube: FakeKubeAPI, http: httpx.Client, backend: FakeServer, ns: str) -> None:
    kube.add_stack_services(ns, prometheus=backend.url, loki=backend.url, grafana=backend.url, kiali=backend.url)
    for service_id, path in (("kube-prometheus-stack-prometheus:9090", "/api/v1/query"), ("loki-stack:3100", "/ready"),
                             ("kube-prometheus-stack-grafana:80", "/api/health"), ("kiali:20001", "/kiali/api/status")):
        r = http.get(f"/api/v1/namespaces/{ns}/services/{service_id}/proxy{path}")
        assert (r.status_code, r.json()["path"]) == (200, path)
    assert http.get(f"/api/v1/namespaces/{ns}/services/kiali:9090/proxy/metrics").status_code == 503


def test_proxy_connection_refused(kube: FakeKubeAPI, http: httpx.Client, ns: str) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kube.add_service(ns, "loki", f"http://127.0.0.1:{port}", port=3100, port_name="http-metrics")
    r = http.get(f"/api/v1/namespaces/{ns}/services/loki:3100/proxy/ready")
    assert r.status_code == 503
    assert r.json()["message"] == f"error trying to reach service: dial tcp 127.0.0.1:{port}: connect: connection refused"


def test_proxy_through_the_official_client(core: client.CoreV1Api, proxied: str) -> None:
    # The client sends `prom%3A9090/proxy/api%2Fv1%2Fquery`; the API server decodes both.
    raw = core.connect_get_namespaced_service_proxy_with_path("prom:9090", proxied, "api/v1/query")
    assert "'path': '/api/v1/query'" in raw


# -- core resources through the official client --------------------------------------------


def test_pagination(kube: FakeKubeAPI, core: client.CoreV1Api, ns: str) -> None:
    for i in range(5):
        kube.add_pod(ns, f"p{i}")
    first = core.list_namespaced_pod(ns, limit=2)
    assert [p.metadata.name for p in first.items] == ["p0", "p1"] and first.metadata.remaining_item_count == 3
    second = core.list_namespaced_pod(ns, limit=10, _continue=first.metadata._continue)
    assert [p.metadata.name for p in second.items] == ["p2", "p3", "p4"] and not second.metadata._continue


def test_get_missing_is_404_status(core: client.CoreV1Api, http: httpx.Client, ns: str) -> None:
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("x", ns)
    assert err.value.status == 404
    assert status_of(err.value) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                    "message": 'pods "x" not found', "reason": "NotFound",
                                    "details": {"name": "x", "kind": "pods"}, "code": 404}
    r = http.get("/api/v1/foos")
    assert (r.status_code, r.json()["message"]) == (404, "the server could not find the requested resource")
    assert http.get("/apis/nope.io/v1/bars").text == "404 page not found\n"


def test_method_not_allowed(http: httpx.Client, ns: str) -> None:
    r = http.put(f"/api/v1/namespaces/{ns}/pods/x", json={})
    assert (r.status_code, r.json()["reason"]) == (405, "MethodNotAllowed")


def test_watch_is_refused(http: httpx.Client, ns: str) -> None:
    r = http.get(f"/api/v1/namespaces/{ns}/pods", params={"watch": "true"})
    assert (r.status_code, r.json()["message"]) == (400, WATCH_REFUSED)
    assert http.get(f"/api/v1/watch/namespaces/{ns}/pods").status_code == 400


# -- creation, conflicts, namespaces --------------------------------------------------------


def test_create_conflicts_and_missing_namespace(kube: FakeKubeAPI, core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_pod(ns, echo_pod("a", "echo hi"))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(ns, echo_pod("a", "echo hi"))
    assert (err.value.status, status_of(err.value)["reason"], status_of(err.value)["message"]) == \
        (409, "AlreadyExists", 'pods "a" already exists')
    with pytest.raises(ApiException) as err:
        core.create_namespace({"metadata": {"name": ns}})
    assert status_of(err.value)["message"] == f'namespaces "{ns}" already exists'
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod("no-such-ns", echo_pod("a", "echo hi"))
    assert (err.value.status, status_of(err.value)["message"]) == (404, 'namespaces "no-such-ns" not found')
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(ns, echo_pod("Bad_Name", "echo"))
    assert err.value.status == 422 and "a lowercase RFC 1123 subdomain" in status_of(err.value)["message"]


def test_generate_name_and_dry_run(kube: FakeKubeAPI, core: client.CoreV1Api, ns: str) -> None:
    pod = echo_pod("", "echo x")
    pod["metadata"] = {"generateName": "canary-"}
    created = core.create_namespaced_pod(ns, pod)
    assert created.metadata.name.startswith("canary-") and len(created.metadata.name) == len("canary-") + 5
    core.create_namespaced_pod(ns, echo_pod("dry", "echo"), dry_run="All")
    assert kube.get_object("pods", ns, "dry") is None


def test_namespace_termination(kube: FakeKubeAPI, core: client.CoreV1Api, ns: str, monkeypatch) -> None:
    # Long enough for the four requests below to meet the namespace still terminating on a loaded machine.
    monkeypatch.setattr(kube, "namespace_delete_delay", 3.0)
    kube.add_pod(ns, "old")
    deleted = core.delete_namespace(ns)  # the real server answers with the Namespace, not a Status
    assert deleted["status"]["phase"] == "Terminating" and deleted["metadata"]["deletionTimestamp"]
    assert core.read_namespace(ns).status.phase == "Terminating"
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(ns, echo_pod("late", "echo"))
    body = status_of(err.value)
    assert (err.value.status, body["message"]) == (
        403, f'pods "late" is forbidden: unable to create new content in namespace {ns} because it is being terminated')
    assert body["details"]["causes"] == [{"reason": "NamespaceTerminating", "message": f"namespace {ns} is being terminated",
                                          "field": "metadata.namespace"}]
    with pytest.raises(ApiException) as err:
        core.delete_namespace(ns)
    assert status_of(err.value)["message"].startswith(f'Operation cannot be fulfilled on namespaces "{ns}": The system')
    with pytest.raises(ApiException) as err:
        core.create_namespace({"metadata": {"name": ns}})
    assert status_of(err.value)["message"] == f'object is being deleted: namespaces "{ns}" already exists'

    def gone() -> bool:
        try:
            core.read_namespace(ns)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(gone, timeout=10.0)
    assert kube.get_object("pods", ns, "old") is None
    with pytest.raises(ApiException) as err:
        core.delete_namespace("default")
    assert status_of(err.value)["message"] == 'namespaces "default" is forbidden: this namespace may not be deleted'


# -- pod lifecycle and logs ------------------------------------------------------------------


def test_pod_lifecycle_and_hook(kube: FakeKubeAPI, core: client.CoreV1Api, ns: str, monkeypatch) -> None:
    seen: list[dict] = []
    kube.on_pod_started = lambda pod: pod["metadata"]["namespace"] == ns and seen.append(pod)
    monkeypatch.setattr(kube, "pod_start_delay", 3600)  # held in ContainerCreating until start_now, however slow
    created = core.create_namespaced_pod(ns, echo_pod("canary", "echo 'LINE one'; echo \"two\""))
    assert created.status.phase == "Pending" and created.spec.node_name is None
    assert created.spec.restart_policy == "Never" and created.spec.containers[0].image_pull_policy == "IfNotPresent"

    pending = wait_for(lambda: (p := core.read_namespaced_pod("canary", ns)).spec.node_name and p)
    assert pending.status.container_statuses[0].state.waiting.reason == "ContainerCreating"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("canary", ns)
    assert status_of(err.value)["message"] == 'container "c" in pod "canary" is waiting to start: ContainerCreating'

    kube.start_now(ns, "canary")
    running = wait_for(lambda: (p := core.read_namespaced_pod("canary", ns)).status.phase == "Running" and p)
    assert {c.type: c.status for c in running.status.conditions}["Ready"] == "True"
    assert running.status.container_statuses[0].state.running.started_at
    assert [p["metadata"]["name"] for p in seen] == ["canary"] and seen[0]["status"]["phase"] == "Running"

    done = wait_for(lambda: (p := core.read_namespaced_pod("canary", ns)).status.phase == "Succeeded" and p)
    term = done.status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (0, "Completed")
    assert {c.type: c.reason for c in done.status.conditions}["Ready"] == "PodCompleted"
    assert core.read_namespaced_pod_log("canary", ns) == "LINE one\ntwo\n"
    assert core.read_namespaced_pod_log("canary", ns, tail_lines=1) == "two\n"
    assert len(seen) == 1 and not kube.hook_errors
    reasons = [e.reason for e in core.list_namespaced_event(ns, field_selector="involvedObject.name=canary").items]
    assert sorted(reasons) == ["Created", "Pulled", "Scheduled", "Started"]


def test_failing_and_long_running_pods(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_pod(ns, echo_pod("fails", "echo oops; exit 3"))
    core.create_namespaced_pod(ns, echo_pod("server", "echo up", restart="Always"))
    failed = wait_for(lambda: (p := core.read_namespaced_pod("fails", ns)).status.phase == "Failed" and p)
    assert (failed.status.container_statuses[0].state.terminated.exit_code,
            failed.status.container_statuses[0].state.terminated.reason) == (3, "Error")
    time.sleep(0.05)
    assert core.read_namespaced_pod("server", ns).status.phase == "Running"  # created together, still running


def test_hook_errors_are_kept(kube: FakeKubeAPI, core: client.CoreV1Api, ns: str) -> None:
    def broken(pod: dict) -> None:
        raise RuntimeError("agent down")

    kube.on_pod_started = broken
    core.create_namespaced_pod(ns, echo_pod("p", "echo x"))
    wait_for(lambda: kube.hook_errors)
    assert str(kube.hook_errors[0]) == "agent down"


def test_image_pull_error(kube: FakeKubeAPI, core: client.CoreV1Api, ns: str) -> None:
    kube.image_pull_errors["busybox:9"] = "toomanyrequests: You have reached your pull rate limit"
    core.create_namespaced_pod(ns, echo_pod("p", "echo x", image="busybox:9"))
    pod = wait_for(lambda: (p := core.read_namespaced_pod("p", ns)).spec.node_name and p)
    assert pod.status.container_statuses[0].state.waiting.reason == "ErrImagePull"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("p", ns)
    assert status_of(err.value)["message"] == 'container "c" in pod "p" is waiting to start: image can\'t be pulled'


def test_log_errors(kube: FakeKubeAPI, http: httpx.Client, ns: str) -> None:
    kube.add_pod(ns, "one", logs="a\n")
    kube.add_pod(ns, "two", containers=[{"name": "app", "image": "x:1"}, {"name": "istio-proxy", "image": "y:1"}])
    cases = [
        (f"/api/v1/namespaces/{ns}/pods/one/log?previous=true", 400,
         'previous terminated container "main" in pod "one" not found'),
        (f"/api/v1/namespaces/{ns}/pods/one/log?container=nope", 400, "container nope is not valid for pod one"),
        (f"/api/v1/namespaces/{ns}/pods/two/log", 400,
         "a container name must be specified for pod two, choose one of: [app istio-proxy]"),
        (f"/api/v1/namespaces/{ns}/pods/ghost/log", 404, 'pods "ghost" not found'),
    ]
    for path, code, message in cases:
        r = http.get(path)
        assert (r.status_code, r.json()["message"]) == (code, message)
    assert http.get(f"/api/v1/namespaces/{ns}/pods/one/log").text == "a\n"


def test_pod_delete_is_graceful(kube: FakeKubeAPI, core: client.CoreV1Api, ns: str) -> None:
    kube.add_pod(ns, "p")
    resp = core.delete_namespaced_pod("p", ns, body=client.V1DeleteOptions(propagation_policy="Background"))
    assert resp.metadata.deletion_timestamp and resp.metadata.deletion_grace_period_seconds == 30
    wait_for(lambda: kube.get_object("pods", ns, "p") is None)
    writes = [(r.method, r.path) for r in kube.writes() if r.path.endswith(f"/{ns}/pods/p")]
    assert writes == [("DELETE", f"/api/v1/namespaces/{ns}/pods/p")]
    assert json.loads(kube.writes()[-1].body)["propagationPolicy"] == "Background"


# -- custom objects -----------------------------------------------------------------------------


def test_custom_objects(kube: FakeKubeAPI, api_client: client.ApiClient, http: httpx.Client, ns: str) -> None:
    kube.add_service_monitor(ns, "istiod", {"release": "kube-prometheus-stack"}, {"endpoints": [{"port": "http-monitoring"}]})
    kube.add_prometheus(ns, "kube-prometheus-stack-prometheus", {"externalLabels": {"cluster": "oke"}})
    kube.add_kiali(ns)
    custom = client.CustomObjectsApi(api_client)
    monitors = custom.list_namespaced_custom_object("monitoring.coreos.com", "v1", ns, "servicemonitors")
    assert monitors["kind"] == "ServiceMonitorList" and monitors["items"][0]["kind"] == "ServiceMonitor"
    assert monitors["items"][0]["metadata"]["labels"] == {"release": "kube-prometheus-stack"}
    prom = custom.get_namespaced_custom_object("monitoring.coreos.com", "v1", ns, "prometheuses",
                                               "kube-prometheus-stack-prometheus")
    assert prom["spec"]["externalLabels"] == {"cluster": "oke"}
    assert custom.list_namespaced_custom_object("kiali.io", "v1alpha1", ns, "kialis")["items"][0]["metadata"]["name"] == "kiali"
    with pytest.raises(ApiException) as err:
        custom.get_namespaced_custom_object("monitoring.coreos.com", "v1", ns, "servicemonitors", "nope")
    assert status_of(err.value)["message"] == 'servicemonitors.monitoring.coreos.com "nope" not found'
    assert status_of(err.value)["details"] == {"name": "nope", "group": "monitoring.coreos.com", "kind": "servicemonitors"}
    kube.removed_groups.add("kiali.io")
    r = http.get(f"/apis/kiali.io/v1alpha1/namespaces/{ns}/kialis")
    assert (r.status_code, r.text) == (404, "404 page not found\n")


# -- apps/v1 Deployments and the scale subresource ------------------------------------------------


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


def test_scale_merge_patch_and_errors(kube: FakeKubeAPI, http: httpx.Client, ns: str) -> None:
    kube.add_deployment(ns, "traffic", replicas=1)
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/traffic/scale"

    def patch(body: object, content_type: str = "application/merge-patch+json", target: str = path) -> httpx.Response:
        return http.patch(target, content=json.dumps(body), headers={"Content-Type": content_type})

    assert patch({"spec": {"replicas": 2}}).json()["spec"] == {"replicas": 2}
    negative = patch({"spec": {"replicas": -1}})
    assert (negative.status_code, negative.json()["message"]) == (
        422, 'Scale.autoscaling "traffic" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0')
    assert negative.json()["details"]["causes"][0]["field"] == "spec.replicas"
    unsupported = patch({"spec": {"replicas": 2}}, "application/json")
    assert (unsupported.status_code, unsupported.json()["reason"]) == (415, "UnsupportedMediaType")
    bad_op = patch([{"op": "replace", "path": "/spec/nope/x", "value": 1}], "application/json-patch+json")
    assert (bad_op.status_code, bad_op.json()["message"]) == (422, "the server rejected our request due to an error in our request")
    missing = patch({"spec": {"replicas": 1}}, target=f"/apis/apps/v1/namespaces/{ns}/deployments/ghost/scale")
    assert (missing.status_code, missing.json()["message"]) == (404, 'deployments.apps "ghost" not found')
    assert http.put(path, json={}).status_code == 405


def test_scale_rbac_denial(kube: FakeKubeAPI, apps: client.AppsV1Api, ns: str) -> None:
    kube.add_deployment(ns, "traffic")
    kube.deny("deployments/scale", "patch")
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment_scale("traffic", ns, {"spec": {"replicas": 0}})
    assert err.value.status == 403
    assert status_of(err.value)["message"] == (
        f'deployments.apps "traffic" is forbidden: User "system:serviceaccount:monitoring:conformance" cannot patch '
        f'resource "deployments/scale" in API group "apps" in the namespace "{ns}"')


# -- recording ----------------------------------------------------------------------------------


def test_reads_record_no_writes(kube: FakeKubeAPI, core: client.CoreV1Api, http: httpx.Client, proxied: str) -> None:
    before = len(kube.writes())
    core.list_namespaced_pod(proxied)
    core.list_event_for_all_namespaces()
    http.get(f"/api/v1/namespaces/{proxied}/services/prom:9090/proxy/api/v1/query?query=up")
    assert len(kube.writes()) == before
    http.post(f"/api/v1/namespaces/{proxied}/services/prom:9090/proxy/api/v1/query", data={"query": "up"})
    assert kube.writes()[-1].method == "POST"  # a proxied POST counts as a write, as --read-only must see it


# -- unit: mini shell and selectors ----------------------------------------------------------


CONTAINER_RUNS = [  # (container, (the lines the mini shell prints, its exit code; None: runs on))
    ({"command": ["sh", "-c", "echo 'LINE'"]}, (["LINE"], 0)),
    ({"command": ["/bin/sh", "-c"], "args": ["echo \"a b\" && echo -n c; exit 2; echo never"]}, (["a b", "c"], 2)),
    ({"command": ["echo", "hello", "world"]}, (["hello world"], 0)),
    ({"command": ["sh", "-c", "echo x > /tmp/f; sleep infinity"]}, ([], None)),
    ({"image": "prom/prometheus"}, ([], None)),
]


def test_container_run() -> None:
    wrong = {json.dumps(c): got for c, expected in CONTAINER_RUNS if (got := ko.container_run(c)) != expected}
    assert not wrong, wrong


def test_label_selector_semantics() -> None:
    reqs = ko.parse_label_selector("app in (a, b),tier!=db,!legacy,release")
    labels = {"app": "a", "release": "x"}
    assert all(r.matches(labels) for r in reqs)
    assert not all(r.matches({"app": "c", "release": "x"}) for r in reqs)
    with pytest.raises(ValueError):
        ko.parse_label_selector("app in (a")
