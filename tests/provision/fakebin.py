"""One fake for docker, kind, kubectl, helm and istioctl, installed under each name.

Each call appends {"tool", "argv", "KUBECONFIG"} to calls.jsonl next to it and
answers like the real tool for the calls the bring-up makes. kind keeps a tiny
state (clusters.json) so `kind get clusters` reflects creates and deletes.
`istioctl remote-clusters` answers as istioctl 1.29.6 prints it (docs/real-stack.md#remote-clusters):
the config cluster and every cluster a `create-remote-secret` named, each remote's STATUS taken
call by call from remote-sync.json (a list; the last state repeats; default ["synced"]).
scenario.json overrides answers: a list of rules
    {"tool": "helm", "match": ["upgrade", "kube-prometheus-stack"], "nth": 1,
     "exit": 1, "stdout": "", "stderr": "...", "sleep": 0}
`match` tokens must appear in argv in order; `nth` picks the nth matching call.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOOL = Path(sys.argv[0]).name
ARGV = sys.argv[1:]

# Planted credentials: the contract tests assert none of them leaves the tool.
PLANTED_CLIENT_KEY = "UExBTlRFRC1DTElFTlQtS0VZLWRvLW5vdC1sZWFr"
PLANTED_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwbGFudGVkLXRva2VuIn0.cGxhbnRlZC1zaWduYXR1cmUtZG8tbm90LWxlYWs"
PLANTED_PASSWORD = "planted-grafana-password-do-not-leak"
KIND_SUBNET = "172.18.0.0/16"


def main() -> int:
    with (HERE / "lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with (HERE / "calls.jsonl").open("a") as log:
            log.write(json.dumps({"tool": TOOL, "argv": ARGV, "KUBECONFIG": os.environ.get("KUBECONFIG"),
                                  "version": os.environ.get("FAKE_VERSION")}) + "\n")
        rule = _rule()
        if rule is None:
            code, out, err = answer()
        fcntl.flock(lock, fcntl.LOCK_UN)
    if rule is not None:
        time.sleep(rule.get("sleep", 0))
        code, out, err = rule.get("exit", 0), rule.get("stdout", ""), rule.get("stderr", "")
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


def _rule() -> dict | None:
    path = HERE / "scenario.json"
    if not path.is_file():
        return None
    rules = json.loads(path.read_text())
    counts_path = HERE / "counts.json"
    counts = json.loads(counts_path.read_text()) if counts_path.is_file() else {}
    found = None
    for i, rule in enumerate(rules):
        if rule["tool"] != TOOL or not _subsequence(rule.get("match", []), ARGV):
            continue
        counts[str(i)] = counts.get(str(i), 0) + 1
        if found is None and rule.get("nth", counts[str(i)]) == counts[str(i)]:
            found = rule
    counts_path.write_text(json.dumps(counts))
    return found


def _subsequence(tokens: list[str], argv: list[str]) -> bool:
    it = iter(argv)
    return all(any(t == a for a in it) for t in tokens)


def _clusters() -> list[str]:
    path = HERE / "clusters.json"
    return json.loads(path.read_text()) if path.is_file() else []


def _save_clusters(names: list[str]) -> None:
    (HERE / "clusters.json").write_text(json.dumps(names))


def _flag(name: str) -> str | None:
    for i, a in enumerate(ARGV):
        if a == name and i + 1 < len(ARGV):
            return ARGV[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def _node_ip(name: str) -> str:
    # Docker hands out addresses in creation order; stable per name here.
    return f"172.18.0.{2 + sorted(_clusters()).index(name)}" if name in _clusters() else ""


def answer() -> tuple[int, str, str]:
    return {"docker": docker, "kind": kind, "kubectl": kubectl, "helm": helm, "istioctl": istioctl}[TOOL]()


def docker() -> tuple[int, str, str]:
    if ARGV[:1] == ["info"]:
        return 0, json.dumps({"ServerVersion": "28.2.2", "MemTotal": 16 * 2**30, "DockerRootDir": str(HERE)}), ""
    if ARGV[:1] == ["ps"]:
        return 0, "".join(f"{c}\n" for c in _clusters()), ""
    if ARGV[:2] == ["network", "inspect"]:
        return 0, json.dumps([{"Subnet": KIND_SUBNET, "Gateway": "172.18.0.1"}, {"Subnet": "fc00:f853:ccd:e793::/64"}]) + "\n", ""
    if ARGV[:1] == ["inspect"]:
        container = ARGV[-1]
        name = container.removesuffix("-control-plane")
        if name not in _clusters():
            return 1, "", f"Error: No such object: {container}\n"
        fmt = ARGV[ARGV.index("--format") + 1]
        if "IPAddress" in fmt:
            return 0, _node_ip(name) + "\n", ""
        return 0, f"container-id-of-{name}\n", ""
    return 0, "", ""


def kind() -> tuple[int, str, str]:
    if ARGV[:1] == ["version"]:
        return 0, "kind v0.31.0 go1.25.5 linux/amd64\n", ""
    if ARGV[:2] == ["get", "clusters"]:
        names = _clusters()
        return 0, "".join(f"{n}\n" for n in names), "" if names else "No kind clusters found.\n"
    name = _flag("--name") or "kind"
    if ARGV[:2] == ["create", "cluster"]:
        if name in _clusters():
            return 1, "", f'ERROR: failed to create cluster: node(s) already exist for a cluster with the name "{name}"\n'
        _save_clusters(_clusters() + [name])
        return 0, "", f"Creating cluster \"{name}\" ...\n"
    if ARGV[:2] == ["delete", "cluster"]:
        _save_clusters([c for c in _clusters() if c != name])
        return 0, "", f"Deleting cluster \"{name}\" ...\n"
    if ARGV[:2] == ["get", "kubeconfig"]:
        return 0, KUBECONFIG_TEMPLATE.format(name=name, host=f"{name}-control-plane:6443", key=PLANTED_CLIENT_KEY), ""
    if ARGV[:2] == ["export", "logs"]:
        out = Path(ARGV[2])
        out.mkdir(parents=True, exist_ok=True)
        (out / "kubelet.log").write_text(f"kubelet started; bearer token: {PLANTED_TOKEN}\n")
        return 0, f"Exporting logs for cluster \"{name}\" to:\n{out}\n", ""
    return 0, "", ""


def kubectl() -> tuple[int, str, str]:
    if ARGV[:1] == ["version"]:
        return 0, "Client Version: v1.35.0\nKustomize Version: v5.7.1\n", ""
    if "jsonpath={.status.loadBalancer.ingress[0].ip}" in ARGV:
        service = ARGV[ARGV.index("service") + 1]
        return 0, {"istio-eastwestgateway": "172.18.255.230", "loki-stack": "172.18.255.231",
                   "kube-prometheus-stack-prometheus": "172.18.255.232"}.get(service, "172.18.255.239"), ""
    if "kiali-service-account-token" in ARGV and "get" in ARGV:
        data = {"token": base64.b64encode(PLANTED_TOKEN.encode()).decode(),
                "ca.crt": base64.b64encode(b"-----BEGIN CERTIFICATE-----\nplanted\n-----END CERTIFICATE-----\n").decode()}
        return 0, json.dumps({"kind": "Secret", "data": data}), ""
    if "pods" in ARGV and "json" in ARGV:
        pod = {"metadata": {"namespace": "monitoring", "name": "kube-prometheus-stack-grafana-0"},
               "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}],
                          "containerStatuses": [{"name": "grafana", "restartCount": 3}]}}
        return 0, json.dumps({"items": [pod]}), ""
    if "pods" in ARGV and "wide" in ARGV:
        return 0, ("NAMESPACE    NAME                               READY   STATUS             RESTARTS\n"
                   "monitoring   kube-prometheus-stack-grafana-0    0/3     CrashLoopBackOff   3\n"), ""
    if ARGV and "describe" in ARGV and "pod" in ARGV:
        return 0, ("Environment:\n  GF_SECURITY_ADMIN_PASSWORD: " + PLANTED_PASSWORD + "\n"
                   f"  admin-password: {PLANTED_PASSWORD}\nEvents: Back-off restarting failed container\n"), ""
    if "exec" in ARGV and "cat" in ARGV and ARGV[-1].startswith("/var/lib/grafana/dashboards/"):
        return 0, json.dumps({"title": Path(ARGV[-1]).stem, "panels": [{"type": "timeseries"}]}), ""
    if "logs" in ARGV:
        return 0, f"level=info msg=started token={PLANTED_TOKEN}\nAuthorization: Bearer {PLANTED_TOKEN}\n", ""
    if "get" in ARGV and "events" in ARGV:
        return 0, "LAST SEEN   TYPE      REASON    OBJECT   MESSAGE\n1m   Warning   BackOff   pod/grafana   Back-off\n", ""
    return 0, "", ""


def helm() -> tuple[int, str, str]:
    if ARGV[:1] == ["version"]:
        return 0, "v3.19.0+g3d8990f\n", ""
    return 0, "", ""


def istioctl() -> tuple[int, str, str]:
    if ARGV[:1] == ["version"]:
        # FAKE_VERSION: a wrapper in the tool cache poses as another pinned istioctl (tests of the upgrade).
        return 0, f"client version: {os.environ.get('FAKE_VERSION') or '1.29.6'}\n", ""
    if ARGV[:1] == ["create-remote-secret"]:
        name = _flag("--name")
        server = _flag("--server") or "https://127.0.0.1:44321"  # istioctl's default: the kubeconfig's server
        kubeconfig = KUBECONFIG_TEMPLATE.format(name=name, host=server.removeprefix("https://"), key=PLANTED_CLIENT_KEY)
        secret = {"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": f"istio-remote-secret-{name}", "namespace": "istio-system",
                               "labels": {"istio/multiCluster": "true"}, "annotations": {"networking.istio.io/cluster": name}},
                  "stringData": {name: kubeconfig.replace(f"client-key-data: {PLANTED_CLIENT_KEY}", f"token: {PLANTED_TOKEN}")}}
        _save_json("remote-secrets.json", sorted(set(_load_json("remote-secrets.json", [])) | {name}))
        return 0, "# This file is autogenerated, do not edit.\n" + json.dumps(secret) + "\n", ""
    if ARGV[:1] == ["remote-clusters"]:
        return 0, remote_clusters(), ""
    return 0, "", ""


ISTIOD_POD = "istiod-6c8f9d7b5-x7k2p"


def remote_clusters() -> str:
    """istioctl/pkg/proxyconfig/clusters.go at 1.29.6: a tabwriter table (padding 5), one row per cluster
    of pilot's debug/clusterz: the config cluster (no secret) first, then each remote secret's cluster."""
    states = _load_json("remote-sync.json", ["synced"])
    calls = _load_json("remote-sync-calls.json", 0)
    _save_json("remote-sync-calls.json", calls + 1)
    status = states[min(calls, len(states) - 1)]
    primary = (_flag("--context") or "kind-primary").removeprefix("kind-")
    rows = [["NAME", "SECRET", "STATUS", "ISTIOD"], [primary, "", "synced", ISTIOD_POD]]
    rows += [[r, f"istio-system/istio-remote-secret-{r}", status, ISTIOD_POD] for r in _load_json("remote-secrets.json", [])]
    widths = [max(len(row[i]) for row in rows) + 5 for i in range(3)]
    return "".join("".join(c.ljust(w) for c, w in zip(row, widths)) + row[3] + "\n" for row in rows)


def _load_json(name: str, default):
    path = HERE / name
    return json.loads(path.read_text()) if path.is_file() else default


def _save_json(name: str, value) -> None:
    (HERE / name).write_text(json.dumps(value))


KUBECONFIG_TEMPLATE = """apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTi1wbGFudGVkLWNh
    server: https://{host}
  name: kind-{name}
contexts:
- context:
    cluster: kind-{name}
    user: kind-{name}
  name: kind-{name}
current-context: kind-{name}
users:
- name: kind-{name}
  user:
    client-certificate-data: LS0tLS1CRUdJTi1wbGFudGVkLWNlcnQ
    client-key-data: {key}
"""


if __name__ == "__main__":
    sys.exit(main())
