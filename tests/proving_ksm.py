"""The kube-state-metrics proving ground: two real control planes, a real kube-state-metrics on each, the real
Prometheus pair scraping them as the chart's ServiceMonitor does, the remote remote-writing to the primary.

Everything runs inside a network namespace (tests/real/netns.py): the control planes on 10.77.1.1 (oke) and
10.77.2.1 (workstation), kube-state-metrics v2.20.0 (tests/real) with a kubeconfig of its cluster, and both
Prometheus v3.14.0 on the namespace's loopback. The topology gives the clusters as provider existing (the canary
pod is made in the real API server, kwok runs it) with the Prometheus URLs as services overrides.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as kclient
from kubernetes import config as kconfig

import tests.real as real
from conformance.probes.kube_state_metrics.target import JOB
from conformance.core.stack import stack_namespace
from conformance.probes.platform.scrape_jobs import chart_release
from tests.proving_ground import PrometheusPair, free_port, start_pair
from tests.proving_realkube import report_crash_loop, wait_for
from tests.real.kube import UNREADY_NODE, ControlPlane, kubeconfig_entry, write_kubeconfig
from tests.real.netns import NetNamespace
from tests.real.process import LoopbackServer, http_ok, log_tail

ADDRESSES = {"oke": "10.77.1.1", "workstation": "10.77.2.1"}
# kube-state-metrics 8.4.0 values.yaml `collectors`: the chart's --resources (templates/deployment.yaml).
CHART_COLLECTORS = (
    "certificatesigningrequests", "configmaps", "cronjobs", "daemonsets", "deployments", "endpointslices",
    "horizontalpodautoscalers", "ingresses", "jobs", "leases", "limitranges", "mutatingwebhookconfigurations",
    "namespaces", "networkpolicies", "nodes", "persistentvolumeclaims", "persistentvolumes", "poddisruptionbudgets",
    "pods", "replicasets", "replicationcontrollers", "resourcequotas", "secrets", "services", "statefulsets",
    "storageclasses", "validatingwebhookconfigurations", "volumeattachments",
)
KSM_POD = "kube-prometheus-stack-kube-state-metrics-7d9c8b6f5-ksm01"  # the Deployment's pod (target label only)
# A pod every kind cluster runs besides the stack's (kind v0.31.0's CoreDNS Deployment in kube-system): something
# for a kube-state-metrics restricted to kube-system to describe.
SYSTEM_POD = ("kube-system", "coredns-7c65d6cfc9-x7k2m")


@dataclass
class KsmProcess(LoopbackServer):
    """One kube-state-metrics against one cluster's API server; restart() changes its flags."""

    LOG = "kube-state-metrics.log"
    cluster: str
    kubeconfig: Path
    folder: Path
    port: int = 0
    namespaces: str = ""  # --namespaces (the chart's `namespaces` value); "" watches every namespace
    # The cluster's API server, where the Deployment's pod is kept as the chart renders it (its args are what the
    # checks read); None: no pod object (a test that starts the process alone).
    api: kclient.ApiClient | None = None

    def args(self) -> list[str]:
        # The chart's container args: --port=8080 (service.port), --resources=<collectors>, the telemetry
        # port on 8081; here on loopback ports of the ground's own, with the cluster's kubeconfig.
        args = [str(real.require("kube-state-metrics")), f"--kubeconfig={self.kubeconfig}", "--host=127.0.0.1",
                f"--port={self.port}", "--telemetry-host=127.0.0.1", f"--telemetry-port={free_port()}",
                "--resources=" + ",".join(CHART_COLLECTORS)]
        return args + ([f"--namespaces={self.namespaces}"] if self.namespaces else [])

    def chart_args(self) -> list[str]:
        """The container args kube-state-metrics chart 8.4.0 templates/deployment.yaml renders for these flags."""
        return ["--port=8080", "--resources=" + ",".join(CHART_COLLECTORS)] + \
            ([f"--namespaces={self.namespaces}"] if self.namespaces else [])

    def start(self, ready_timeout: float = 60.0) -> "KsmProcess":
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        if self.api is not None:
            mirror_pod(self.api, self.chart_args())
        # /livez on the http port: the chart's livenessProbe. Appended to: restart() keeps the earlier runs' log.
        return self.launch(self.args(), http_ok(f"{self.url}/livez"), name=f"kube-state-metrics {self.cluster}",
                           timeout=ready_timeout, interval=0.2, state="live", append=True)

    def restart(self, namespaces: str = "") -> None:
        self.stop()
        self.namespaces = namespaces
        self.start()

    def log_text(self) -> str:
        return log_tail(self.log_path)


def mirror_pod(api: kclient.ApiClient, args: list[str], timeout: float = 30.0) -> None:
    """The ksm target's pod (KSM_POD) in the stack namespace with the chart's container and these args; a pod's args
    cannot change, so a restart replaces it, as a rollout does."""
    core, ns = kclient.CoreV1Api(api), stack_namespace()
    try:
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, _request_timeout=15)
    except kclient.ApiException as e:
        if e.status != 409:
            raise
    try:
        core.delete_namespaced_pod(KSM_POD, ns, grace_period_seconds=0, _request_timeout=15)
    except kclient.ApiException as e:
        if e.status != 404:
            raise
    deadline = time.monotonic() + timeout
    while True:
        try:
            core.create_namespaced_pod(ns, {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": KSM_POD, "labels": {"app.kubernetes.io/name": JOB}},
                "spec": {"containers": [{"name": JOB, "image": "registry.example/stand-in:1",
                                         "args": args}]}}, _request_timeout=15)
            return
        except kclient.ApiException as e:
            if e.status != 409 or time.monotonic() > deadline:  # 409: the old one is still being removed
                raise
            time.sleep(0.2)


def crash_looping(api: kclient.ApiClient, backoff: str = "5m0s", restarts: int = 6) -> None:
    """The ksm pod's container keeps exiting (report_crash_loop)."""
    report_crash_loop(api, stack_namespace(), KSM_POD, JOB, backoff, restarts)


def ksm_scrape_job(target: str, honor_labels: bool = True, where: tuple[str, str] | None = None) -> dict:
    """The scrape config prometheus-operator v0.93 renders for the chart's kube-state-metrics ServiceMonitor.

    Its pool is 'serviceMonitor/<ns>/<release>-kube-state-metrics/0'; honor_labels from the endpoint's honorLabels
    (kube-prometheus-stack 88.5.3 sets kube-state-metrics.prometheus.monitor.http.honorLabels: true), so the
    namespace and pod ksm exposes win over the target labels the operator adds for the ksm pod itself.
    """
    ns, service = where or (stack_namespace(), f"{chart_release()}-kube-state-metrics")  # where: (namespace, Service)
    target_labels = {"namespace": ns, "service": service, "pod": KSM_POD, "container": JOB, "endpoint": "http",
                     "job": JOB}  # jobLabel app.kubernetes.io/name: the Service's label value
    return {"job_name": f"serviceMonitor/{ns}/{service}/0", "honor_labels": honor_labels, "static_configs": [{"targets": [target]}],
            "relabel_configs": [{"target_label": k, "replacement": v} for k, v in target_labels.items()]}


@dataclass
class KsmGround:
    """Both control planes, a kube-state-metrics on each, the Prometheus pair scraping them."""

    folder: Path
    ns: NetNamespace
    planes: dict[str, ControlPlane]
    ksm: dict[str, KsmProcess]
    pair: PrometheusPair | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.folder / "kubeconfig"

    def prometheus_url(self, cluster: str) -> str:
        return (self.pair.primary if cluster == "oke" else self.pair.remote).url

    def topology(self, parts: list[str] | dict | None = None, name: str = "topology.yaml",
                 services: dict[str, dict[str, str]] | None = None) -> Path:
        """provider existing (the API servers, for the canary) with each cluster's Prometheus URL (and `services`,
        per cluster: other parts' servers on the namespace's loopback)."""
        clusters = [{"name": c, "role": "primary" if c == "oke" else "remote", "provider": "existing",
                     "context": f"kind-{c}", "kubeconfig": str(self.kubeconfig),
                     "services": {"prometheus": self.prometheus_url(c), **(services or {}).get(c, {})}}
                    for c in self.planes]
        doc = {"clusters": clusters, **({"parts": parts} if parts else {})}
        path = self.folder / name
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def api(self, cluster: str) -> kclient.ApiClient:
        return kconfig.new_client_from_config(str(self.kubeconfig), context=f"kind-{cluster}")

    def stop(self) -> None:
        if self.pair:
            self.pair.stop()
        for k in self.ksm.values():
            k.stop()
        for p in self.planes.values():
            p.stop()


def start_ksm_ground(folder: Path, ns: NetNamespace, scraped: tuple[str, ...] = ("oke", "workstation"),
                     honor_labels: bool = True, extra_jobs: dict[str, list[dict]] | None = None,
                     names: str = "bring-up", **pair_options: Any) -> KsmGround:
    """Inside ns: control planes, kube-state-metrics, the pair (scraping ksm on the clusters in `scraped`).

    extra_jobs: more scrape jobs per cluster, and pair_options for start_pair (rules, Alertmanagers): the other
    parts' servers when this ground carries every part (tests/test_all_parts.py). names="other": the subchart's
    Service as kube-prometheus-stack release kps renders it in observability (OTHER_KSM), scraped under its pool."""
    where = OTHER_KSM if names == "other" else None
    with ns:
        folder.mkdir(parents=True, exist_ok=True)
        planes = {c: ControlPlane(c, ip, folder / c) for c, ip in ADDRESSES.items()}
        ground = KsmGround(folder, ns, planes, {})
        try:
            for plane in planes.values():
                plane.start()
            write_kubeconfig(ground.kubeconfig, [kubeconfig_entry(c, p.server, p.pki, "admin") for c, p in planes.items()])
            for c in planes:
                system_pod(ground.api(c))
                if where:
                    chart_service(ground.api(c), *where)
            for c, plane in planes.items():
                ground.ksm[c] = KsmProcess(c, plane.kubeconfig("admin"), folder / c / "ksm", api=ground.api(c)).start()
            jobs = {c: ([ksm_scrape_job(k.target, honor_labels, where)] if c in scraped else []) + (extra_jobs or {}).get(c, [])
                    for c, k in ground.ksm.items()}
            ground.pair = start_pair(folder / "prometheus", primary_scrape_jobs=jobs["oke"],
                                     remote_scrape_jobs=jobs["workstation"], **pair_options)
            ground.pair.wait_until_remote_arrives(jobs=1 + len(jobs["workstation"]))
        except BaseException:
            ground.stop()
            raise
    return ground


OTHER_KSM = ("observability", "kps-kube-state-metrics")


def chart_service(api: kclient.ApiClient, namespace: str, name: str) -> None:
    """kube-state-metrics chart 8.4.0 templates/service.yaml for release kps: port http 8080, the chart's labels
    (_helpers.tpl kube-state-metrics.labels); discovery reads only the Service (tests/test_discovery.py ksm_chart)."""
    core = kclient.CoreV1Api(api)
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, _request_timeout=15)
    core.create_namespaced_service(namespace, {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": JOB, "app.kubernetes.io/instance": "kps",
                                              "app.kubernetes.io/component": "metrics", "release": "kps"}},
        "spec": {"ports": [{"name": "http", "port": 8080, "targetPort": 8080}],
                 "selector": {"app.kubernetes.io/name": JOB, "app.kubernetes.io/instance": "kps"}}}, _request_timeout=15)


def system_pod(api: kclient.ApiClient) -> None:
    namespace, name = SYSTEM_POD
    kclient.CoreV1Api(api).create_namespaced_pod(namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"k8s-app": "kube-dns"}},
        "spec": {"containers": [{"name": "coredns", "image": "registry.example/stand-in:1"}]}},
        _request_timeout=15)


class NotReadyKubelet:
    """A node whose kubelet runs pods and never finds them Ready (kwok-stages.yaml pod-not-ready), the only node
    the scheduler may use while entered: a pod made meanwhile is Running and not Ready from its first status on."""

    PROBE = ("default", "unready-kubelet-probe")  # proves the scheduler places pods on the node only

    def __init__(self, ground: KsmGround, cluster: str, timeout: float = 60.0) -> None:
        self.core = kclient.CoreV1Api(ground.api(cluster))
        self.ns, self.timeout = ground.ns, timeout
        self.cordoned: list[str] = []  # the cluster's own nodes, unschedulable while entered
        self.probed = ""  # the probe pod's Ready condition on the node

    def __enter__(self) -> "NotReadyKubelet":
        with self.ns:
            self.cordoned = [n.metadata.name for n in self.core.list_node(_request_timeout=15).items
                             if not n.spec.unschedulable]
            for name in self.cordoned:
                self._schedulable(name, False)
            self.core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {
                "name": UNREADY_NODE, "labels": {"kubernetes.io/hostname": UNREADY_NODE, "kubernetes.io/os": "linux",
                                                 "type": "kwok"}, "annotations": {"kwok.x-k8s.io/node": "fake"}},
                "spec": {"unschedulable": True}}, _request_timeout=15)
            try:
                self._only_the_node_is_used()
            except BaseException:
                self.__exit__()
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        with self.ns:
            try:
                self.core.delete_namespaced_pod(self.PROBE[1], self.PROBE[0], grace_period_seconds=0, _request_timeout=15)
            except kclient.ApiException as e:
                if e.status != 404:
                    raise
            self._schedulable(UNREADY_NODE, False)
            for name in self.cordoned:
                self._schedulable(name, True)
            on_node = lambda: self.core.list_pod_for_all_namespaces(  # noqa: E731
                field_selector=f"spec.nodeName={UNREADY_NODE}", _request_timeout=15).items
            wait_for(f"the pods on {UNREADY_NODE} deleted", lambda: not on_node(), self.timeout)
            self.core.delete_node(UNREADY_NODE, _request_timeout=15)

    def _only_the_node_is_used(self) -> None:
        """The scheduler's cache has every other node cordoned (a probe pod finds no node while this one is
        cordoned too), then this one schedulable (the probe lands on it): no pod made later can go elsewhere."""
        namespace, name = self.PROBE
        self.core.create_namespaced_pod(namespace, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "probe", "image": "registry.example/stand-in:1"}]}}, _request_timeout=15)
        wait_for("the scheduler finding no node for the probe pod", lambda: self._condition("PodScheduled") == "False",
                 self.timeout)
        self._schedulable(UNREADY_NODE, True)
        self.probed = wait_for(f"the probe pod running on {UNREADY_NODE}",
                               lambda: self._probe().status.phase == "Running" and self._condition("Ready"), self.timeout)
        self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=0, _request_timeout=15)

    def _probe(self) -> Any:
        pod = self.core.read_namespaced_pod(self.PROBE[1], self.PROBE[0], _request_timeout=15)
        if pod.spec.node_name not in (None, UNREADY_NODE):
            raise AssertionError(f"the scheduler put the probe pod on {pod.spec.node_name}, a cordoned node")
        return pod

    def _condition(self, kind: str) -> str:
        return next((c.status for c in self._probe().status.conditions or [] if c.type == kind), "")

    def _schedulable(self, node: str, schedulable: bool) -> None:
        self.core.patch_node(node, {"spec": {"unschedulable": not schedulable}}, _request_timeout=15)
