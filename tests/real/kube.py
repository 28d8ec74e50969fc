"""A real Kubernetes control plane per cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok.

The five processes kwokctl's `--runtime binary` runs (sigs.k8s.io/kwok v0.8.0
pkg/kwokctl/runtime/binary), configured here from their own flags: the API server
serves TLS on the cluster's address with client-certificate auth and Node,RBAC
authorization, as kind's kubeadm does; kwok plays the nodes (with leases) and moves pods
through the lifecycle of tests/real/kwok-stages.yaml, and serves container logs from
CRI-format files, which the API server's pods/log reaches as it reaches a kubelet.
Start it inside a network namespace (tests/real/netns.py): every address is the test's own.
"""

from __future__ import annotations

import base64
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import yaml

from tests import web
import tests.real as real
from tests.real.pki import Pki, make_pki
from tests.real.process import log_tail, spawn, stop_process

STAGES = Path(__file__).with_name("kwok-stages.yaml")
# A node whose pods kwok runs and never marks Ready (kwok-stages.yaml pod-not-ready selects its name).
UNREADY_NODE = "unready-kubelet"
ETCD_PORT, ETCD_PEER_PORT = 2379, 2380
API_PORT = 6443  # kubeadm's
KUBELET_PORT = 10250  # kwok serves the nodes' kubelet API here
SERVICE_CIDR = "10.96.0.0/16"  # kind's default service subnet
# kind's kubeconfig user: kubeadm's admin.conf, group kubeadm:cluster-admins bound to cluster-admin (kubeadm >= 1.29).
ADMIN = ("kubernetes-admin", "kubeadm:cluster-admins")
CLIENTS = {
    "admin": ADMIN,
    "super-admin": ("kubernetes-super-admin", "system:masters"),  # the bring-up's own bootstrap, never the suites'
    "controller-manager": ("system:kube-controller-manager", None),
    "scheduler": ("system:kube-scheduler", None),
    "kwok": ("system:kwok", "system:masters"),  # kwokctl gives kwok the admin cert
    "nobody": ("conformance-nobody", None),  # authenticated, bound to nothing: what RBAC refuses
}
LOG_NAMESPACES = ("monitoring", "istio-system", "conformance-canary", "sample")


@dataclass(frozen=True)
class LogRule:
    """Which file kwok serves as the log of a namespace's pods (one pod, one container, when named)."""

    namespace: str
    file: Path
    pod: str | None = None
    container: str | None = None
    previous: Path | None = None  # what `kubectl logs --previous` shows


class ControlPlaneFailed(Exception):
    """A component exited or never became ready; the message carries its log's tail."""


@dataclass
class Component:
    """One process of the control plane, its log in the cluster's folder."""

    name: str
    args: list[str]
    log_path: Path
    proc: subprocess.Popen | None = None
    _log: IO | None = field(default=None, repr=False)

    def start(self) -> "Component":
        self.proc, self._log = spawn(self.args, self.log_path)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, chars: int = 1500) -> str:
        return log_tail(self.log_path, chars)

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise ControlPlaneFailed(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")

    def stop(self) -> None:
        stop_process(self.proc, self._log, timeout=15)
        self._log = None


def tls_context(server: Pki, client: str, client_pki: Pki | None = None) -> ssl.SSLContext:
    """Trust the server's CA, present `client`'s certificate (httpx 0.28 wants an SSLContext for both)."""
    ctx = ssl.create_default_context(cafile=str(server.ca))
    owner = client_pki or server
    ctx.load_cert_chain(str(owner.cert(client)), str(owner.key(client)))
    return ctx


def kubeconfig_entry(name: str, server: str, pki: Pki, client: str) -> dict:
    """kind's kubeconfig for one cluster: cluster, user and context all `kind-<name>`, data embedded."""
    data = lambda p: base64.b64encode(p.read_bytes()).decode()  # noqa: E731
    ctx = f"kind-{name}"
    return {
        "clusters": [{"name": ctx, "cluster": {"server": server, "certificate-authority-data": data(pki.ca)}}],
        "users": [{"name": ctx, "user": {"client-certificate-data": data(pki.cert(client)),
                                          "client-key-data": data(pki.key(client))}}],
        "contexts": [{"name": ctx, "context": {"cluster": ctx, "user": ctx}}],
    }


def write_kubeconfig(path: Path, entries: list[dict], current: str | None = None) -> Path:
    doc: dict = {"apiVersion": "v1", "kind": "Config", "preferences": {}, "clusters": [], "users": [], "contexts": []}
    for e in entries:
        for key in ("clusters", "users", "contexts"):
            doc[key] += e[key]
    doc["current-context"] = current or doc["contexts"][0]["name"]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path


@dataclass
class ControlPlane:
    """One cluster: its address inside the namespace, its folder, its running components."""

    name: str
    ip: str
    folder: Path
    components: list[Component] = field(default_factory=list)
    pki: Pki | None = None
    log_rules: list[LogRule] = field(default_factory=list)  # before the per-namespace defaults
    started_seconds: float = 0.0

    @property
    def server(self) -> str:
        return f"https://{self.ip}:{API_PORT}"

    @property
    def node_name(self) -> str:
        return f"{self.name}-control-plane"  # kind's node name

    def kubeconfig(self, client: str = "admin") -> Path:
        return self.folder / f"kubeconfig-{client}"

    def log_file(self, namespace: str) -> Path:
        """The CRI-format log kwok serves for every container of the namespace's pods."""
        return self.folder / "logs" / f"{namespace}.log"

    def http(self, client: str = "super-admin", pki: Pki | None = None) -> httpx.Client:
        """A client of this API server as `client` (a cert of this cluster's CA, or of `pki`'s)."""
        return httpx.Client(base_url=self.server, verify=tls_context(self.pki, client, pki), timeout=10)

    def start(self, ready_timeout: float = 180.0) -> "ControlPlane":
        started = time.monotonic()
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "logs").mkdir(exist_ok=True)
        self.pki = make_pki(self.folder / "pki", self.ip, CLIENTS)
        for client in CLIENTS:
            write_kubeconfig(self.kubeconfig(client), [kubeconfig_entry(self.name, self.server, self.pki, client)])
        deadline = time.monotonic() + ready_timeout
        try:
            self._run("etcd", self._etcd_args())
            self._wait(deadline, "etcd", lambda: web.get(f"http://{self.ip}:{ETCD_PORT}/health", timeout=2).json()["health"] == "true")
            self._run("kube-apiserver", self._apiserver_args())
            self._wait(deadline, "kube-apiserver", self._apiserver_ready)
            self._bootstrap()
            self._run("kube-controller-manager", self._kcm_args())
            self._run("kube-scheduler", self._scheduler_args())
            self._run("kwok", self._kwok_args())
            self._create_node()
            self._wait(deadline, "kwok (node Ready)", self._node_ready)
            self._wait(deadline, "kube-controller-manager (default service account)", self._default_sa)
        except BaseException:
            self.stop()
            raise
        self.started_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        for c in reversed(self.components):
            c.stop()

    def check(self) -> None:
        for c in self.components:
            c.check()

    def _run(self, name: str, args: list[str]) -> None:
        binary = str(real.path(name))
        self.components.append(Component(name, [binary, *args], self.folder / f"{name}.log").start())

    def _wait(self, deadline: float, what: str, ready) -> None:
        last = "no answer yet"
        delay = 0.1
        while time.monotonic() < deadline:
            self.check()
            try:
                if ready():
                    return
                last = "not ready"
            except (httpx.HTTPError, ValueError, KeyError) as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        raise ControlPlaneFailed(f"{self.name}: {what} not ready in time (last: {last})\n"
                                 + "\n".join(f"--- {c.name}\n{c.tail(800)}" for c in self.components))

    # -- readiness probes --------------------------------------------------------------

    def _apiserver_ready(self) -> bool:
        with self.http() as c:
            return c.get("/readyz").status_code == 200

    def _node_ready(self) -> bool:
        with self.http() as c:
            r = c.get(f"/api/v1/nodes/{self.node_name}")
        conditions = r.json().get("status", {}).get("conditions", []) if r.status_code == 200 else []
        return any(x["type"] == "Ready" and x["status"] == "True" for x in conditions)

    def _default_sa(self) -> bool:
        with self.http() as c:
            return c.get("/api/v1/namespaces/default/serviceaccounts/default").status_code == 200

    # -- what kubeadm / kind would have done ---------------------------------------------

    def _bootstrap(self) -> None:
        """kubeadm's binding of its admin group to cluster-admin (kubeadm init phase kubeconfig, >= 1.29)."""
        binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": "kubeadm:cluster-admins"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                   "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": ADMIN[1]}]}
        with self.http() as c:
            r = c.post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", json=binding)
        if r.status_code not in (201, 409):
            raise ControlPlaneFailed(f"{self.name}: cannot bind {ADMIN[1]} to cluster-admin: {r.status_code} {r.text[:300]}")

    def _create_node(self) -> None:
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node_name,
                             "labels": {"kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux",
                                        "kubernetes.io/arch": "amd64", "node-role.kubernetes.io/control-plane": "",
                                        "type": "kwok"},
                             "annotations": {"kwok.x-k8s.io/node": "fake"}}}
        with self.http() as c:
            r = c.post("/api/v1/nodes", json=node)
        if r.status_code not in (201, 409):
            raise ControlPlaneFailed(f"{self.name}: cannot create node: {r.status_code} {r.text[:300]}")

    # -- flags -----------------------------------------------------------------------

    def _etcd_args(self) -> list[str]:
        client, peer = f"http://{self.ip}:{ETCD_PORT}", f"http://{self.ip}:{ETCD_PEER_PORT}"
        return ["--name=node0", f"--data-dir={self.folder / 'etcd'}", f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}", f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}", f"--initial-cluster=node0={peer}",
                "--auto-compaction-retention=1", "--log-level=warn"]

    def _apiserver_args(self) -> list[str]:
        p = self.pki
        return [
            f"--etcd-servers=http://{self.ip}:{ETCD_PORT}",
            f"--bind-address={self.ip}", f"--advertise-address={self.ip}", f"--secure-port={API_PORT}",
            f"--tls-cert-file={p.cert('apiserver')}", f"--tls-private-key-file={p.key('apiserver')}",
            f"--client-ca-file={p.ca}",
            f"--service-account-key-file={p.sa_pub}", f"--service-account-signing-key-file={p.sa_key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            # kwok's kubelet endpoint presents the kwok cert; kubeadm trusts kubelets by CA, kind's are self-signed.
            f"--kubelet-client-certificate={p.cert('super-admin')}", f"--kubelet-client-key={p.key('super-admin')}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--cert-dir={self.folder / 'apiserver-certs'}",
            "--profiling=false",
        ]

    def _kcm_args(self) -> list[str]:
        p = self.pki
        return [f"--kubeconfig={self.kubeconfig('controller-manager')}",
                f"--authentication-kubeconfig={self.kubeconfig('controller-manager')}",
                f"--authorization-kubeconfig={self.kubeconfig('controller-manager')}",
                f"--service-account-private-key-file={p.sa_key}", f"--root-ca-file={p.ca}",
                f"--service-cluster-ip-range={SERVICE_CIDR}", "--use-service-account-credentials=true",
                "--leader-elect=false", f"--bind-address={self.ip}", "--secure-port=10257",
                f"--cert-dir={self.folder / 'kcm-certs'}"]

    def _scheduler_args(self) -> list[str]:
        return [f"--kubeconfig={self.kubeconfig('scheduler')}",
                f"--authentication-kubeconfig={self.kubeconfig('scheduler')}",
                f"--authorization-kubeconfig={self.kubeconfig('scheduler')}",
                "--leader-elect=false", f"--bind-address={self.ip}", "--secure-port=10259",
                f"--cert-dir={self.folder / 'scheduler-certs'}"]

    def _kwok_args(self) -> list[str]:
        config = self.folder / "kwok.yaml"
        config.write_text(self._kwok_config())
        return [f"--kubeconfig={self.kubeconfig('kwok')}", f"--config={config}", "--manage-all-nodes=true",
                f"--node-ip={self.ip}", f"--node-port={KUBELET_PORT}", f"--server-address={self.ip}:{KUBELET_PORT}",
                f"--tls-cert-file={self.pki.cert('apiserver')}", f"--tls-private-key-file={self.pki.key('apiserver')}",
                "--node-lease-duration-seconds=40"]

    def _kwok_config(self) -> str:
        """Our Stages, then ClusterLogs: the log rules given, then the file of each namespace for its other pods."""
        rules = [*self.log_rules, *(LogRule(ns, self.log_file(ns)) for ns in LOG_NAMESPACES)]
        logs = []
        for i, rule in enumerate(rules):
            rule.file.touch()
            log = {"containers": [rule.container] if rule.container else [], "logsFile": str(rule.file)}
            if rule.previous:
                rule.previous.touch()
                log["previousLogsFile"] = str(rule.previous)
            selector = {"matchNamespaces": [rule.namespace], **({"matchNames": [rule.pod]} if rule.pod else {})}
            logs.append({"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterLogs", "metadata": {"name": f"logs-{i}"},
                         "spec": {"selector": selector, "logs": [log]}})
        return STAGES.read_text() + "".join("---\n" + yaml.safe_dump(d, sort_keys=False) for d in logs)
