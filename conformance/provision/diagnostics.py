"""The diagnostics bundle: per cluster, bounded commands into reports/diagnostics/<cluster>/, redacted."""

from __future__ import annotations

import base64
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from conformance.provision.clusters import State
from conformance.provision.commands import ISTIO_NS, Kube
from conformance.provision.redact import Redactor, redact_secret_data
from conformance.provision.steps import Facts
from conformance.core.stack import stack_namespace, stack_services
from conformance.core.topology import Cluster, Topology

# Each command has its own bound: one hung API server must not eat the whole budget.
COMMAND_TIMEOUT = 30.0
LOGS_TIMEOUT = 20.0
EXPORT_TIMEOUT = 120.0
# Pods described and logged per cluster; enough for a broken stack, bounded for a broken cluster.
MAX_PODS = 20
LOG_TAIL = "500"


@dataclass(frozen=True)
class Probe:
    """One file of the bundle: the command that fills it and how to post-process its output."""

    filename: str
    argv: tuple[str, ...]
    timeout: float = COMMAND_TIMEOUT
    post: Callable[[str], str] | None = None


def collect(topology: Topology, state: State, tools: dict[str, Path], reports: Path,
            facts: Facts | None = None) -> Path:
    """Collect the bundle for every cluster we can reach, clusters side by side; never raises for a failing command."""
    redact = Redactor(facts or Facts())
    root = reports / "diagnostics"
    clusters = [c for c in topology.clusters if c.has_kube
                # Not ours (or not created yet): never touch a user's kind cluster.
                and not (c.provider == "kind" and state.read_marker(c.name) is None)]
    with ThreadPoolExecutor(max_workers=max(len(clusters), 1)) as pool:
        list(pool.map(lambda c: _collect_one(c, Kube(c, state), tools, root / c.name, redact), clusters))
    return root


def _collect_one(cluster: Cluster, kube: Kube, tools: dict[str, Path], out: Path, redact: Redactor) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for probe in probes(kube, cluster.is_primary):
        _write(out / probe.filename, _run(probe, tools), redact)
    pods = _run(Probe("pods.json", kube.kubectl("get", "pods", "--all-namespaces", "--output", "json")), tools)
    for probe in pod_probes(kube, pods):
        _write(out / probe.filename, _run(probe, tools), redact)
    if cluster.provider == "kind":
        _write(out / "kind-export-logs.txt",
               _run(Probe("", ("kind", "export", "logs", str(out / "kind-logs"), "--name", cluster.name),
                          EXPORT_TIMEOUT), tools), redact)
        _redact_tree(out / "kind-logs", redact)


def probes(kube: Kube, primary: bool) -> list[Probe]:
    """What to collect from every cluster (docs/troubleshooting.md#what-to-collect-when-a-check-fails)."""
    ns = stack_namespace()
    prom = stack_services()["prometheus"]
    targets = f"{prom.proxy_path()}/api/v1/targets?state=active"
    found = [
        Probe("events.txt", kube.kubectl("get", "events", "--all-namespaces", "--sort-by=.lastTimestamp")),
        Probe("pods.txt", kube.kubectl("get", "pods", "--all-namespaces", "--output", "wide")),
        Probe("nodes.txt", kube.kubectl("describe", "nodes")),
        Probe("helm-list.txt", kube.helm("list", "--all-namespaces")),
        Probe("images.txt", kube.kubectl("get", "pods", "--all-namespaces", "--output",
                                         "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}:"
                                         "{range .spec.containers[*]} {.image}{end}{'\\n'}{end}")),
        Probe("namespaces.txt", kube.kubectl("get", "namespaces", "--show-labels")),
        Probe("prometheus-targets-down.json", kube.kubectl("get", "--raw", targets), post=down_targets),
        Probe("monitors.txt", kube.kubectl("get", "servicemonitors,podmonitors", "--all-namespaces", "--show-labels")),
        Probe("istio-proxy-status.txt", kube.istioctl("proxy-status")),
        Probe("istio-webhooks.txt", kube.kubectl("get", "mutatingwebhookconfigurations", "--output",
                                                 "jsonpath={range .items[*]}{.metadata.name}:{range .webhooks[*]}"
                                                 " caBundle={.clientConfig.caBundle}{end}{'\\n'}{end}"), post=ca_lengths),
        Probe("services-loadbalancer.txt", kube.kubectl("get", "services", "--all-namespaces", "--field-selector",
                                                        "spec.type=LoadBalancer")),
    ]
    if primary:
        found += [
            Probe("istio-remote-clusters.txt", kube.istioctl("remote-clusters")),
            Probe("kiali-cr.yaml", kube.kubectl("get", "kiali", "--all-namespaces", "--output", "yaml")),
            Probe("kiali-config.yaml", kube.kubectl("get", "configmap", "kiali", "--namespace", ns, "--output", "yaml")),
            Probe("kiali-remote-secrets.txt", kube.kubectl("get", "secrets", "--namespace", ns, "--selector",
                                                           "kiali.io/multiCluster=true", "--output", "json"),
                  post=secret_servers),
            Probe("istio-remote-secrets.txt", kube.kubectl("get", "secrets", "--namespace", ISTIO_NS, "--selector",
                                                           "istio/multiCluster=true", "--output", "json"),
                  post=secret_servers),
        ]
    return found


def pod_probes(kube: Kube, pods_json: str) -> list[Probe]:
    """describe, logs and previous logs of pods that are not Ready (the first MAX_PODS)."""
    try:
        items = json.loads(pods_json).get("items", [])
    except ValueError:
        return []
    found = []
    for pod in [p for p in items if not _ready(p)][:MAX_PODS]:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        base = f"pod-{ns}-{name}"
        found += [
            Probe(f"{base}-describe.txt", kube.kubectl("describe", "pod", name, "--namespace", ns)),
            Probe(f"{base}-logs.txt", kube.kubectl("logs", name, "--namespace", ns, "--all-containers",
                                                   "--tail", LOG_TAIL), LOGS_TIMEOUT),
        ]
        restarted = any(cs.get("restartCount", 0) > 0 for cs in pod.get("status", {}).get("containerStatuses", []))
        if restarted:
            found.append(Probe(f"{base}-previous-logs.txt", kube.kubectl(
                "logs", name, "--namespace", ns, "--all-containers", "--previous", "--tail", LOG_TAIL), LOGS_TIMEOUT))
    return found


def _ready(pod: dict) -> bool:
    if pod.get("status", {}).get("phase") == "Succeeded":
        return True
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions", []))


def down_targets(text: str) -> str:
    """Only the targets whose health is not up, with their scrape URL and last error."""
    try:
        active = json.loads(text)["data"]["activeTargets"]
    except (ValueError, KeyError, TypeError):
        return text
    down = [{k: t.get(k) for k in ("scrapePool", "scrapeUrl", "health", "lastError")}
            for t in active if t.get("health") != "up"]
    return json.dumps(down, indent=2)


def ca_lengths(text: str) -> str:
    """Webhook caBundle lengths instead of the certificates.

    An empty one breaks injection: docs/troubleshooting.md#injection-webhook-fails-on-the-remote.
    """
    lines = []
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        lens = [str(len(part.split("=", 1)[1])) for part in rest.split() if part.startswith("caBundle=")]
        lines.append(f"{name}: caBundle lengths {', '.join(lens) or 'none'}")
    return "\n".join(lines)


def secret_servers(text: str) -> str:
    """Names, labels, annotations and API-server URLs of remote secrets; never their credentials."""
    try:
        items = json.loads(text).get("items", [])
    except ValueError:
        return "(unreadable)"
    lines = []
    for s in items:
        meta = s.get("metadata", {})
        servers = []
        for value in (s.get("data") or {}).values():
            try:
                kc = yaml.safe_load(base64.b64decode(value).decode()) or {}
                servers += [c.get("cluster", {}).get("server", "") for c in kc.get("clusters", [])]
            except (ValueError, UnicodeDecodeError, yaml.YAMLError, AttributeError):  # not a kubeconfig
                continue
        lines.append(f"{meta.get('name')}: labels={meta.get('labels')} annotations={meta.get('annotations')} "
                     f"servers={servers}")
    return "\n".join(lines) or "(none)"


def _run(probe: Probe, tools: dict[str, Path]) -> str:
    argv = [str(tools.get(probe.argv[0], probe.argv[0])), *probe.argv[1:]]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=probe.timeout)
    except subprocess.TimeoutExpired:
        return f"(timed out after {probe.timeout:.0f}s: {' '.join(probe.argv[:4])} ...)\n"
    except OSError as e:
        return f"(cannot run {probe.argv[0]}: {e.strerror})\n"
    text = proc.stdout
    if probe.post is not None and proc.returncode == 0:
        text = probe.post(text)
    if proc.returncode != 0:
        text += f"\n(exit {proc.returncode}) {proc.stderr.strip()[-2000:]}\n"
    return text


def _write(path: Path, text: str, redact: Redactor) -> None:
    if not text.strip():
        return  # empty outputs are noise (kiali's ci-get-debug-info.sh drops them too)
    path.write_text(redact(redact_secret_data(text)))


def _redact_tree(root: Path, redact: Redactor) -> None:
    if not root.is_dir():
        return
    for f in root.rglob("*"):
        if f.is_file():
            try:
                f.write_text(redact(f.read_text()))
            except (UnicodeDecodeError, OSError):
                continue
