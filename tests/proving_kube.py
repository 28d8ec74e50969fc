"""The whole stack behind two fake Kubernetes API servers, for suite self-tests through the service proxy.

Two FakeKubeAPIs (`oke`, `workstation`) share one kubeconfig (contexts `kind-oke`, `kind-workstation`);
the topology gives both as `provider: existing`, so every service is reached through the API server's
service proxy with the kubeconfig's token. Behind the proxies: the real Prometheus pair, FakeLoki,
FakeGrafana (admin Secret, datasources on the real Prometheus and FakeLoki) and FakeKiali.

The log agent is modelled as Promtail's kubernetes-pods job: when a pod starts on a cluster, that
cluster's FakePromtail ships the pod's stdout with the cluster's external labels.
"""

from __future__ import annotations

import base64
import json
import threading
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol
from urllib.parse import urlsplit

import yaml

from conformance.probes.kiali.remote_secrets import REMOTE_SECRET_LABEL
from conformance.core.manifests import MANIFESTS, Deployment, traffic_generator
from tests import web
from tests.fakes.envoy import FakeEnvoy, FakeIstiod, request_series
from tests.fakes.exporter import FakeExporter
from tests.fakes.grafana import FakeGrafana
from tests.fakes.kiali import FakeKiali
from tests.fakes.kubeapi import FakeKubeAPI
from tests.fakes.loki import FakeLoki
from tests.fakes.promtail import FakePromtail
from tests.fakes.server import FakeServer, Request
from tests.proving_ground import PrometheusPair, start_pair
from conformance.core.profiles import PROFILES as STACK_PROFILES
from conformance.probes.platform.scrape_jobs import ChartRelease, project_job
from conformance.core.stack import stack_services
from tests.proving_stack import CLUSTERS, PROFILES, kiali_spec, stack_scrape_jobs, start_grafana
from tests.suite_runner import write_topology

GRAFANA_SECRET = "kube-prometheus-stack-grafana"  # stack/services.yaml credentials_secret
GRAFANA_POD = "kube-prometheus-stack-grafana-6d8f7c9b5-x2k4q"
# Ready pods a healthy install has in the stack's namespaces (stack/services.yaml pod_namespaces).
STACK_PODS = {
    "oke": {"monitoring": ["kube-prometheus-stack-operator-5c9d8b7f6-abcde", "prometheus-kube-prometheus-stack-prometheus-0",
                           "loki-stack-0", "loki-stack-promtail-7xk2p"],
            "istio-system": ["istiod-7b9c8d6f5-fghij", "kiali-6f7d8c9b4-klmno"]},
    # Istio 1.29.6's `remote` profile runs no istiod and no gateway there (manifests/profiles/remote.yaml):
    # only the injection webhook configuration, which points at the primary's istiod.
    "workstation": {"monitoring": ["kube-prometheus-stack-operator-5c9d8b7f6-pqrst",
                                   "prometheus-kube-prometheus-stack-prometheus-0", "loki-stack-promtail-9zq3w"]},
}
SIDECAR = {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.29.6",
           "ports": [{"name": "http-envoy-prom", "containerPort": 15090, "protocol": "TCP"}]}
SERVER = Deployment("sample", "helloworld")  # stack/app/server.yaml, on the primary
# The permanent injected workload the bring-up deploys on every remote (one replica, app=sleep), so that
# a remote always has an Envoy to scrape; the traffic generator stays at 0 replicas until the mesh check.
SLEEP = Deployment("sample", "sleep")


@dataclass
class KubeStack:
    """Running fakes, the kubeconfig that reaches both API servers, and the topology that uses it."""

    folder: Path
    pair: PrometheusPair
    loki: FakeLoki
    grafana: FakeGrafana
    kiali: FakeKiali
    apis: dict[str, FakeKubeAPI] = field(default_factory=dict)
    promtails: dict[str, FakePromtail] = field(default_factory=dict)  # the log agents (FakeAlloy: profile alloy)
    profile: str = "promtail"
    prometheus_ips: dict[str, str] = field(default_factory=dict)  # names="other": prometheus-operated's clusterIP

    @property
    def kubeconfig(self) -> Path:
        return self.folder / "kubeconfig"

    def topology(self, name: str = "topology.yaml") -> Path:
        """Both clusters as provider existing: no service URL, everything through the API servers."""
        clusters = [{"name": c, "role": "primary" if c == "oke" else "remote", "provider": "existing",
                     "context": f"kind-{c}", "kubeconfig": str(self.kubeconfig)} for c in CLUSTERS]
        return write_topology(self.folder, clusters, name, None if self.profile == "promtail" else self.profile)

    def servers(self) -> dict[str, FakeServer]:
        """Every fake the suite can talk to, by name."""
        return {**{f"kube-{c}": api for c, api in self.apis.items()},
                "loki": self.loki, "grafana": self.grafana, "kiali": self.kiali}

    def writes(self) -> dict[str, list[Request]]:
        """Writing requests each fake received, by fake."""
        return {name: server.writes() for name, server in self.servers().items()}

    def hook_errors(self) -> list[BaseException]:
        return [e for api in self.apis.values() for e in api.hook_errors]

    def stop(self) -> None:
        for api in self.apis.values():
            api.stop()
        for p in self.promtails.values():
            p.stop()
        for server in (self.kiali, self.grafana, self.loki):
            server.stop()


def promtail_hook(api: FakeKubeAPI, promtail: FakePromtail):
    """on_pod_started: ship every line the pod's containers printed, as Promtail's kubernetes-pods job would."""
    def ship(pod: dict) -> None:
        meta = pod["metadata"]
        for container in pod["spec"]["containers"]:
            text = api.pod_log(meta["namespace"], meta["name"], container["name"])
            for line in text.splitlines():
                promtail.emit(line, meta["namespace"], meta["name"], container["name"],
                              (meta.get("labels") or {}).get("app", ""))
    return ship


def seed_stack_pods(api: FakeKubeAPI, promtail: FakePromtail) -> None:
    """Ready stack pods, each with one log line its cluster's agent ships (a real cluster's Loki is never empty)."""
    for namespace, pods in STACK_PODS[api.cluster].items():
        for pod in pods:
            line = f'level=info msg="started" pod={pod}'
            labels, container = stack_pod_identity(pod)
            api.add_pod(namespace, pod, labels=labels, containers=[{"name": container, "image": "busybox:1.36"}],
                        logs={container: line + "\n"})
            promtail.emit(line, namespace, pod, container, pod.split("-")[0])


# Pod labels and main container of the stack pods the suites look up by selector (stack/services.yaml
# pod_selector): prometheus-operator's Prometheus StatefulSet (pkg/prometheus/server/statefulset.go) and
# the promtail chart's DaemonSet (templates/_helpers.tpl promtail.selectorLabels).
STACK_POD_IDENTITY = {
    "prometheus-": ({"app.kubernetes.io/name": "prometheus", "prometheus": "kube-prometheus-stack-prometheus"},
                    "prometheus"),
    "loki-stack-promtail-": ({"app.kubernetes.io/name": "promtail", "app.kubernetes.io/instance": "loki-stack"},
                             "promtail"),
}


def stack_pod_identity(pod: str) -> tuple[dict[str, str], str]:
    """(labels, container) of a seeded stack pod: the chart's for those the suites select, else app=<prefix>."""
    for prefix, identity in STACK_POD_IDENTITY.items():
        if pod.startswith(prefix):
            return identity
    return {"app": pod.split("-")[0]}, "main"


def seed_sample_app(api: FakeKubeAPI, primary: bool) -> None:
    """The sample app as the bring-up leaves it: helloworld on the primary; sleep and a stopped traffic on a remote."""
    injected = {"labels": {"istio-injection": "enabled"}}
    api.add_namespace("sample", **injected)
    if primary:
        api.add_deployment(SERVER.namespace, SERVER.name, 1, {"app": "helloworld", "version": "v1"},
                           containers=[{"name": "helloworld", "image": "docker.io/istio/examples-helloworld-v1:1.0"}, SIDECAR])
        return
    api.add_deployment(SLEEP.namespace, SLEEP.name, 1, {"app": "sleep"},
                       containers=[{"name": "sleep", "image": "docker.io/curlimages/curl:8.21.0"}, SIDECAR])
    traffic = traffic_generator()
    api.add_deployment(traffic.namespace, traffic.name, 0, {"app": "traffic"},
                       containers=[{"name": "curl", "image": "docker.io/curlimages/curl:8.21.0"}, SIDECAR])


ISTIOD_JOB = project_job(MANIFESTS / "istiod-servicemonitor.yaml").job  # the job istiod's targets carry


@dataclass
class SampleMesh:
    """The mesh as the sample app's traffic moves it: istiod's monitoring port (15014), helloworld's sidecar on the
    primary (its destination series once `flowing()` has said so), and the traffic generator's sidecar on the remote,
    a target in the file_sd file `client_targets` while its pods run (its source series)."""

    istiod: FakeIstiod
    server: FakeEnvoy
    client: FakeEnvoy
    client_targets: Path
    flowing: Callable[[], bool] = lambda: False  # set once the clusters run


@contextmanager
def sample_mesh(folder: Path) -> Iterator[SampleMesh]:
    """FakeIstiod and the two sidecars of the sample request from workstation to oke; no client target yet."""
    folder.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        client_targets = folder / "traffic-envoys.json"
        client_targets.write_text('[{"targets": [], "labels": {}}]')  # before Prometheus starts: file_sd reads it
        made: list[SampleMesh] = []  # the server's sidecar asks the mesh made below
        server = stack.enter_context(FakeEnvoy([request_series("destination", "workstation", "oke")],
                                               traffic_flowing=lambda: made[0].flowing()))
        client = stack.enter_context(FakeEnvoy([request_series("source", "workstation", "oke")]))
        made.append(SampleMesh(stack.enter_context(FakeIstiod()), server, client, client_targets))
        yield made[0]


@contextmanager
def stack_prometheus_pair(folder: Path, chart: ChartRelease | None = None, mesh: SampleMesh | None = None,
                          label: str = "cluster") -> Iterator[PrometheusPair]:
    """The real Prometheus pair scraping what the stack's would: every required job (at a FakeExporter) and the
    sidecars the bring-up runs, helloworld's on the primary and sleep's on the remote (plain Envoy stats); `chart`
    names the chart's monitors after a user's release (OTHER_CHART: install_elsewhere's); `mesh` puts istiod's job on
    its FakeIstiod, helloworld's sidecar and the traffic generator's (file_sd) in the Envoy pools; `label` is the
    external label both carry the cluster's name in."""
    with ExitStack() as stack:
        exporter = stack.enter_context(FakeExporter())
        server_envoy = mesh.server if mesh else stack.enter_context(FakeEnvoy())
        sleep_envoy = stack.enter_context(FakeEnvoy())
        istiod = {ISTIOD_JOB: f"{mesh.istiod.url}/metrics"} if mesh else {}
        remote_jobs = stack_scrape_jobs("remote", exporter.url, [sleep_envoy.url], chart=chart,
                                        envoy_files=(mesh.client_targets,) if mesh else ())
        pair = start_pair(folder, primary_scrape_jobs=stack_scrape_jobs("primary", exporter.url, [server_envoy.url],
                                                                        urls=istiod, chart=chart),
                          remote_scrape_jobs=remote_jobs, label=label)
        stack.callback(pair.stop)
        pair.wait_until_remote_arrives(jobs=len(remote_jobs) + 1)
        yield pair


def seed_grafana(api: FakeKubeAPI, grafana: FakeGrafana, log: str | None, namespace: str = "monitoring",
                 secret: str = GRAFANA_SECRET, labels: dict[str, str] | None = None) -> None:
    """The admin Secret and the Grafana pod; its log is Grafana's own unless `log` replaces it."""
    api.add_secret(namespace, secret, {"admin-user": grafana.admin_user, "admin-password": grafana.admin_password})
    text = log if log is not None else "".join(line + "\n" for line in grafana.log_lines)
    api.add_pod(namespace, GRAFANA_POD, labels=labels or {"app.kubernetes.io/name": "grafana"},
                containers=[{"name": "grafana", "image": "docker.io/grafana/grafana:11.4.0"},
                            {"name": "grafana-sc-dashboard", "image": "quay.io/kiwigrid/k8s-sidecar:1.28.0"}],
                logs={"grafana": text, "grafana-sc-dashboard": ""})


def start_kube_stack(folder: Path, pair: PrometheusPair, *, promtail_labels: dict[str, dict[str, str]] | None = None,
                     dashboards: list[dict] | None = None, grafana_log: str | None = None,
                     sample_app: bool = True, promtail_urls: dict[str, str] | None = None,
                     profile: str = "promtail", names: str = "bring-up") -> KubeStack:
    """Start the fakes, both API servers and their agents; write the kubeconfig.

    sample_app=False: the bring-up's sample app (and with it every injected pod) is missing;
    promtail_urls={cluster: URL} points an agent's client elsewhere (e.g. a port where nothing listens);
    profile="alloy": FakeAlloy agents and Loki 3.7.6 behind the alloy profile's Services (stack/services.yaml);
    names="other": the stack's objects under other names, as a user's own releases leave them (install_elsewhere)."""
    folder.mkdir(parents=True, exist_ok=True)
    agent_class, _, loki_version = PROFILES[profile]
    services = stack_services(profile=profile)
    agent_svc = services[STACK_PROFILES[profile].agent_service]
    loki = FakeLoki(version=loki_version).start()
    grafana = start_grafana(pair, loki, dashboards)
    kiali = FakeKiali(kiali_spec())  # started once its remote secret is on the primary
    stack = KubeStack(folder, pair, loki, grafana, kiali, profile=profile)
    try:
        for cluster in CLUSTERS:
            labels = (promtail_labels or {}).get(cluster, {"cluster": cluster})
            url = (promtail_urls or {}).get(cluster, f"{loki.url}/loki/api/v1/push")
            promtail = agent_class(url, folder / f"{cluster}-unused.log", external_labels=labels).start()
            stack.promtails[cluster] = promtail
            api = FakeKubeAPI(cluster)
            api.on_pod_started = promtail_hook(api, promtail)
            stack.apis[cluster] = api.start()
            api.write_kubeconfig(stack.kubeconfig, f"kind-{cluster}")
            seed_stack_pods(api, promtail)
            if names == "other":
                install_elsewhere(api, stack, cluster == "oke", agent_svc.key, promtail.metrics_url.removesuffix("/metrics"))
                if sample_app:
                    seed_sample_app(api, primary=cluster == "oke")
                continue
            # The agent's metrics Service (stack/services.yaml promtail: the promtail chart's, rendered with
            # service.enabled; alloy: the Alloy chart's).
            api.add_service("monitoring", agent_svc.service, promtail.metrics_url.removesuffix("/metrics"),
                            port=agent_svc.port, port_name="http-metrics")
            if sample_app:
                seed_sample_app(api, primary=cluster == "oke")
        oke, workstation = stack.apis["oke"], stack.apis["workstation"]
        # kiali-operator puts Kiali, and mounts its remote secrets, in the Kiali CR's namespace: istio-system on a user's
        # stack (the Service is added below once Kiali's address is known), the bring-up's monitoring otherwise.
        start_kiali(kiali, oke, workstation, "istio-system" if names == "other" else KIALI_NS)
        if names == "other":  # the grafana chart's own release `grafana`: Secret and pods (grafana.selectorLabels)
            seed_grafana(oke, grafana, grafana_log, "grafana", "grafana",
                         {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": "grafana"})
            # kiali-operator's Service, in istio-system (Kiali has started: its address is known)
            oke.add_service("istio-system", "kiali", ports=[{"name": "http", "port": 20001, "backend": kiali.url},
                                                            {"name": "http-metrics", "port": 9090}],
                            labels={"app": "kiali", "app.kubernetes.io/name": "kiali", "app.kubernetes.io/instance": "kiali"})
            return stack
        oke.add_stack_services(prometheus=pair.primary.url, loki=loki.url, grafana=grafana.url, kiali=kiali.url)
        if profile != "promtail":  # the profile's Loki Service (the Loki chart's `loki`, port http-metrics 3100)
            oke.add_service("monitoring", services["loki"].service, loki.url, port=services["loki"].port,
                            port_name="http-metrics")
        seed_grafana(oke, grafana, grafana_log)
        workstation.add_stack_services(prometheus=pair.remote.url)
    except BaseException:
        stack.stop()
        raise
    return stack


def kps_prometheus_spec(cluster: str, primary: bool, release: str = "kps", remote_write_url: str | None = None,
                        label: str = "cluster") -> dict:
    """The Prometheus resource's spec as kube-prometheus-stack 88.5.3 (templates/prometheus/prometheus.yaml) renders our
    values (stack/values) for release `release`: monitors labelled release=<release> in any namespace, the cluster's
    external label (`label`: the bring-up's `cluster`, or a user's), the receiver on the primary, remote write to the
    primary on a remote."""
    wanted = {"matchLabels": {"release": release}}
    spec: dict = {"serviceMonitorSelector": wanted, "serviceMonitorNamespaceSelector": {},
                  "podMonitorSelector": wanted, "podMonitorNamespaceSelector": {},
                  "externalLabels": {label: cluster}, "enableRemoteWriteReceiver": primary}
    if remote_write_url:
        spec["remoteWrite"] = [{"url": remote_write_url}]
    return spec


OTHER_CHART = ChartRelease("kps", "kps-kube-prometheus-stack", "observability", "install_elsewhere")
# kube-prometheus-stack 88.5.3 templates/_helpers.tpl kube-prometheus-stack.labels on the Prometheus resource of release kps.
KPS_LABELS = {"app": "kube-prometheus-stack-prometheus", "app.kubernetes.io/instance": "kps",
              "app.kubernetes.io/part-of": "kube-prometheus-stack", "chart": "kube-prometheus-stack-88.5.3",
              "release": "kps", "heritage": "Helm"}


def install_elsewhere(api: FakeKubeAPI, stack: KubeStack, primary: bool, agent: str, agent_url: str) -> None:
    """The stack as a user's own releases leave it (the objects each pinned chart renders: tests/test_discovery.py):
    kube-prometheus-stack as release `kps` in `observability`, the log agent's chart in `logging`, and on the
    primary Loki from the Loki chart in `logging` and Grafana as its own release in `grafana` (Kiali, in `istio-system`,
    once it has started)."""
    cluster = "oke" if primary else "workstation"
    svc = api.add_service("observability", "prometheus-operated",
                          stack.pair.primary.url if primary else stack.pair.remote.url,
                          port=9090, port_name="web", labels={"operated-prometheus": "true"})
    stack.prometheus_ips[cluster] = svc["spec"]["clusterIP"]
    api.add_custom_object("monitoring.coreos.com", "v1", "prometheuses", "observability", {
        "metadata": {"name": "kps-kube-prometheus-stack-prometheus", "labels": KPS_LABELS},
        "spec": kps_prometheus_spec(cluster, primary, remote_write_url=None if primary else
                                    f"http://{stack.prometheus_ips['oke']}:9090/api/v1/write", label=stack.pair.label)})
    api.add_service("logging", f"{agent}-metrics" if agent == "promtail" else agent, agent_url,
                    port=stack_services()[agent].port, port_name="http-metrics",
                    labels={"app.kubernetes.io/name": agent, "app.kubernetes.io/instance": agent})
    if not primary:
        return
    api.add_service("logging", "loki", ports=[{"name": "http-metrics", "port": 3100, "backend": stack.loki.url}],
                    labels={"app.kubernetes.io/name": "loki", "app.kubernetes.io/instance": "loki",
                            "app.kubernetes.io/component": "single-binary"})
    api.add_service("grafana", "grafana", stack.grafana.url, port=80, port_name="service", target_port=3000,
                    labels={"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": "grafana"})


KIALI_NS = "monitoring"  # the Kiali CR's namespace (stack/manifests/kiali.yaml), where its remote secrets live
KIALI_POD = "kiali-5f8c7d9b6-tw4xz"
KIALI_SA_TOKEN = "kiali-service-account-token-workstation"  # what stack/manifests/kiali-remote.yaml's Secret holds
KIALI_SA = "system:serviceaccount:monitoring:kiali-service-account"


def remote_secret_kubeconfig(server: str, token: str, cluster: str = "workstation") -> str:
    """The kubeconfig conformance.provision.phases.stack.write_kiali_remote_secret writes: one cluster named as Istio names it."""
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": cluster,
                           "clusters": [{"name": cluster, "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
                           "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}],
                           "users": [{"name": cluster, "user": {"token": token}}]})


def mounted_remote_secrets(oke: FakeKubeAPI, namespace: str = KIALI_NS) -> Callable[[], dict[str, dict[str, str]]]:
    """What kiali-operator mounts into Kiali's pod: the Secrets labelled kiali.io/multiCluster=true, read at each start."""
    def read() -> dict[str, dict[str, str]]:
        listed = web.get(f"{oke.url}/api/v1/namespaces/{namespace}/secrets", params={"labelSelector": REMOTE_SECRET_LABEL},
                           headers={"Authorization": f"Bearer {oke.token}"}).json()
        return {s["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()}
                for s in listed["items"]}
    return read


def kiali_pod_follows(oke: FakeKubeAPI, namespace: str = KIALI_NS) -> Callable[[FakeKiali], None]:
    """on_start: Kiali's pod is Ready behind its Service, or crash-looping with Kiali's log and no endpoints."""
    def follow(kiali: FakeKiali) -> None:
        kiali.on_log = lambda line: oke.append_log(namespace, KIALI_POD, "kiali", line)
        log = "".join(line + "\n" for line in kiali.log_lines)
        oke.add_pod(namespace, KIALI_POD, labels={"app": "kiali", "app.kubernetes.io/name": "kiali"},
                    containers=[{"name": "kiali", "image": "quay.io/kiali/kiali:v2.29.0"}],
                    crashloop=kiali.exited is not None, restart_count=3, logs={"kiali": log}, previous_logs={"kiali": log})
        if oke.get_object("services", namespace, "kiali"):
            oke.set_endpoints_ready(namespace, "kiali", kiali.exited is None)
    return follow


def start_kiali(kiali: FakeKiali, oke: FakeKubeAPI, workstation: FakeKubeAPI, namespace: str = KIALI_NS) -> None:
    """The bring-up's remote secret on the primary (server: the remote's control-plane address, which Kiali's pod
    reaches), Kiali's token on the remote, then Kiali reading both as the operator's pod does."""
    server = f"https://{workstation.host_ip}:6443"
    workstation.tokens[KIALI_SA_TOKEN] = KIALI_SA
    oke.add_secret(namespace, "kiali-remote-cluster-secret-workstation",
                   {"workstation": remote_secret_kubeconfig(server, KIALI_SA_TOKEN)},
                   labels={"kiali.io/multiCluster": "true"}, annotations={"kiali.io/cluster": "workstation"})
    kiali.hosts[f"{workstation.host_ip}:6443"] = workstation.url
    kiali.mounts = mounted_remote_secrets(oke, namespace)
    kiali.on_start = kiali_pod_follows(oke, namespace)
    kiali.start()


class Replicas(Protocol):
    """Where a Deployment's replicas are read: a FakeKubeAPI, or a real API server (tests/proving_realkube.py)."""

    def deployment_replicas(self, namespace: str, name: str) -> int | None: ...


class EnvoyTargets:
    """File-based service discovery of a cluster's sidecars: an Envoy is a target only while its Deployment has
    replicas, as the PodMonitor sees it (Prometheus re-reads the file when it changes)."""

    def __init__(self, api: "FakeKubeAPI | Replicas", path: Path, envoys: dict[Deployment, str], poll: float = 0.2) -> None:
        self.api, self.path, self.envoys, self.poll = api, path, envoys, poll
        self._stop = threading.Event()
        self._written: list[str] | None = None
        self._sync()
        self._thread = threading.Thread(target=self._run, name="envoy-targets", daemon=True)
        self._thread.start()

    @property
    def targets(self) -> list[str]:
        """The sidecars' addresses last written (those whose Deployment had replicas)."""
        return list(self._written or [])

    def _sync(self) -> None:
        targets = sorted(urlsplit(url).netloc for d, url in self.envoys.items()
                         if (self.api.deployment_replicas(d.namespace, d.name) or 0) > 0)
        if targets != self._written:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps([{"targets": targets, "labels": {}}]))
            tmp.replace(self.path)
            self._written = targets

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self._sync()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
