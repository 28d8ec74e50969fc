"""Phases stack and app: the monitoring stack on every cluster (charts, secrets, dashboards), then the sample app."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from urllib.parse import urlparse

import yaml

from conformance.provision import dashboards, logs
from conformance.provision.clusters import State, is_loopback, write_private
from conformance.provision.commands import (
    APP, APP_NS, HELM_STEP_TIMEOUT, KIALI_OPERATOR_NS, MANIFESTS, VALUES, Kube, Options, StepError, helm_install,
    lb_address_step,
)
from conformance.provision.parts import Context, plan_parts
from conformance.provision.steps import Facts, Step
from conformance.core.stack import stack_namespace, stack_services


def stack_phase(opts: Options, state: State, kube: dict[str, Kube]) -> list[Step]:
    """The monitoring stack with the corrections (stack/values, stack/manifests)."""
    topo, charts = opts.topology, opts.versions.charts
    ns = stack_namespace()
    svc = stack_services(profile=topo.profile)
    p = topo.primary.name
    kp = kube[p]
    store = logs.log_store(topo.profile)  # where the remotes' agents write: Loki, or OpenSearch
    kps, kiali = charts["kube-prometheus-stack"], charts["kiali-operator"]
    parts = plan_parts(Context(topo, opts.versions, lambda name: kube[name], lb_address_step, file=state.file))
    grafana_secret = state.file(p, "grafana-admin-secret.yaml")
    steps = [Step("stack", c.name, "monitoring namespace (not injected)",
                  kube[c.name].kubectl("apply", "--filename", str(MANIFESTS / "namespaces.yaml")), timeout=60)
             for c in topo.clusters]
    steps += [
        Step("stack", p, "Grafana admin Secret (generated, never printed)",
             action=lambda f: write_grafana_secret(grafana_secret, ns, f)),
        Step("stack", p, "apply Grafana admin Secret", kp.kubectl("apply", "--filename", str(grafana_secret)), timeout=60),
        *logs.primary_steps(topo, opts.versions, kp, helm_install),
    ]
    kps_values = [VALUES / "kube-prometheus-stack.yaml", *logs.kps_values(topo)]
    if opts.offline is not None:
        declared = dashboards.declared(profile=topo.profile)
        cm_file = state.file(p, "grafana-dashboards.yaml")
        overlay = state.file(p, "grafana-dashboards-offline.yaml")
        kps_values.append(overlay)
        steps += [
            Step("stack", p, f"dashboards from {opts.offline} (offline)", action=lambda f: (
                cm_file.parent.mkdir(parents=True, exist_ok=True),
                cm_file.write_text(dashboards.offline_configmaps(opts.offline, declared, ns)),
                overlay.write_text(dashboards.offline_overlay(declared)))),
            # Server-side: dashboards exceed the 256 KiB last-applied annotation.
            Step("stack", p, "apply dashboard ConfigMaps",
                 kp.kubectl("apply", "--server-side", "--filename", str(cm_file)), timeout=60),
        ]
    kps_values += parts.values.get(p, [])
    steps += [
        Step("stack", p, "install kube-prometheus-stack (receiver, Grafana" + (", Alertmanager" if topo.has("alerting") else "") + ")",
             helm_install(kp, kps, ns, kps_values, sets=[f"prometheus.prometheusSpec.externalLabels.cluster={p}"],
                          set_json=parts.set_json.get(p, [])),
             timeout=HELM_STEP_TIMEOUT, waits_for="operator, Prometheus and Grafana Ready"),
        *parts.after_primary,
        *dashboard_checks(kp, ns, svc["grafana"].service, svc["grafana"].container, topo.profile),
        lb_address_step("stack", kp, ns, svc[store.service].service, store.fact(p), store.title),
        lb_address_step("stack", kp, ns, svc["prometheus"].service, f"{p}.prometheus_ip", "Prometheus"),
        Step("stack", p, "istiod ServiceMonitor and Envoy PodMonitor",
             kp.kubectl("apply", "--filename", str(MANIFESTS / "istiod-servicemonitor.yaml"),
                        "--filename", str(MANIFESTS / "envoy-podmonitor.yaml")), timeout=60),
    ]
    for remote in topo.remotes:
        r = remote.name
        kr = kube[r]
        steps += [
            *logs.remote_steps(topo, opts.versions, r, kr, helm_install),
            Step("stack", r, "install kube-prometheus-stack (Prometheus remote-writing to the primary)",
                 helm_install(kr, kps, ns, [VALUES / "kube-prometheus-stack-remote.yaml", *parts.values.get(r, [])],
                              sets=[f"prometheus.prometheusSpec.externalLabels.cluster={r}"],
                              set_json=["prometheus.prometheusSpec.remoteWrite=" + json.dumps(
                                  [{"url": f"http://@{{{p}.prometheus_ip}}:{svc['prometheus'].port}/api/v1/write"}]),
                                  *parts.set_json.get(r, [])]),
                 timeout=HELM_STEP_TIMEOUT, waits_for="operator and Prometheus Ready"),
            *parts.after_remote.get(r, []),
            Step("stack", r, "Envoy PodMonitor", kr.kubectl("apply", "--filename", str(MANIFESTS / "envoy-podmonitor.yaml")),
                 timeout=60),
        ]
    steps += parts.after_stack
    steps.append(Step("stack", p, "install kiali-operator",
                      helm_install(kp, kiali, KIALI_OPERATOR_NS, [VALUES / "kiali-operator.yaml"]),
                      timeout=HELM_STEP_TIMEOUT, waits_for="kiali-operator Ready"))
    for remote in topo.remotes:
        r = remote.name
        kr = kube[r]
        secret_file = state.file(p, f"kiali-remote-secret-{r}.yaml")
        steps += [
            Step("stack", r, "Kiali service account and token",
                 kr.kubectl("apply", "--filename", str(MANIFESTS / "kiali-remote.yaml")), timeout=60),
            Step("stack", r, "Kiali token issued",
                 kr.kubectl("get", "secret", "kiali-service-account-token", "--namespace", ns, "--output", "json"),
                 timeout=60, retry=True, poll=2, secret=True, capture=f"{r}.kiali_token_json",
                 ready=lambda out: bool((json.loads(out or "{}").get("data") or {}).get("token")),
                 waits_for="token controller fills the Secret"),
            Step("stack", p, f"Kiali remote secret for {r}",
                 action=lambda f, r=r, path=secret_file: write_kiali_remote_secret(path, r, ns, f)),
            # Before the CR: the operator mounts remote secrets only when it reconciles.
            Step("stack", p, f"apply Kiali remote secret for {r}", kp.kubectl("apply", "--filename", str(secret_file)),
                 timeout=60),
        ]
    kiali_cr = state.file(p, "kiali.yaml")
    steps += [
        Step("stack", p, "render Kiali CR" + "".join(f" with {k}.{sub}" for k, v in parts.kiali.items() for sub in v),
             action=lambda f: _render_kiali(kiali_cr, p, parts.kiali)),
        Step("stack", p, "apply Kiali CR", kp.kubectl("apply", "--filename", str(kiali_cr)), timeout=60),
        Step("stack", p, "Kiali deployed",
             kp.kubectl("wait", "kiali/kiali", "--namespace", ns, "--for=condition=Successful", "--timeout=600s"),
             timeout=620, waits_for="kiali-operator reconciled the CR"),
        Step("stack", p, "Kiali Ready",
             kp.kubectl("rollout", "status", f"deployment/{svc['kiali'].service}", "--namespace", ns, "--timeout=300s"),
             timeout=320, waits_for="kiali Deployment available"),
    ]
    return steps


def dashboard_checks(kube: Kube, namespace: str, deployment: str, container: str, profile: str | None = None) -> list[Step]:
    """Every declared dashboard is a file with panels in the Grafana container (a failed download is empty)."""
    steps = []
    for d in dashboards.declared(profile=profile):
        steps.append(Step(
            "stack", kube.cluster.name, f"dashboard {d.folder}/{d.key} provisioned with panels",
            kube.kubectl("exec", f"deployment/{deployment}", "--namespace", namespace, "--container", container,
                         "--", "cat", d.path),
            timeout=60, parse=lambda out, f, d=d: _check_provisioned(out, d)))
    return steps


def _check_provisioned(text: str, d: dashboards.Dashboard) -> None:
    problem = dashboards.provisioned_problem(text, d)
    if problem:
        raise StepError(f"{d.path} in Grafana: {problem}; grafana.com dashboard {d.gnet_id} "
                         f"revision {d.revision} did not provision")


def write_grafana_secret(path: Path, namespace: str, f: Facts) -> None:
    """Generate the admin password once; reused on later runs so a reused Grafana keeps it."""
    cred = stack_services()["grafana"].credentials_secret
    if path.is_file():
        doc = yaml.safe_load(path.read_text())
        f.add_secret(doc["stringData"][cred.password_key])
        return
    password = secrets.token_urlsafe(24)
    f.add_secret(password)
    doc = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
           "metadata": {"name": cred.name, "namespace": namespace},
           "stringData": {cred.user_key: "admin", cred.password_key: password}}
    write_private(path, yaml.safe_dump(doc, sort_keys=False))


def write_kiali_remote_secret(path: Path, remote: str, namespace: str, f: Facts) -> None:
    """The Secret Kiali's operator autodetects: one kubeconfig whose only cluster is named like Istio's cluster."""
    token_secret = json.loads(str(f[f"{remote}.kiali_token_json"]))
    data = token_secret["data"]
    token = base64.b64decode(data["token"]).decode()
    f.add_secret(token)
    server = f"https://{f[f'{remote}.control_plane_ip']}:6443"
    if is_loopback(urlparse(server).hostname or ""):
        raise StepError(f"Kiali's remote server for {remote} would be {server}, unreachable from the primary")
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": remote,
        "clusters": [{"name": remote, "cluster": {"server": server, "certificate-authority-data": data["ca.crt"]}}],
        "users": [{"name": remote, "user": {"token": token}}],
        "contexts": [{"name": remote, "context": {"cluster": remote, "user": remote}}],
    }
    doc = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
           "metadata": {"name": f"kiali-remote-cluster-secret-{remote}", "namespace": namespace,
                        "labels": {"kiali.io/multiCluster": "true"},
                        "annotations": {"kiali.io/cluster": remote}},
           "stringData": {remote: yaml.safe_dump(kubeconfig, sort_keys=False)}}
    write_private(path, yaml.safe_dump(doc, sort_keys=False))


def _render_kiali(dest: Path, primary: str, extra: dict | None = None) -> None:
    doc = yaml.safe_load((MANIFESTS / "kiali.yaml").read_text())
    doc["spec"]["kubernetes_config"]["cluster_name"] = primary
    for key, value in (extra or {}).items():  # an optional part's fields (external_services.tracing)
        doc["spec"].setdefault(key, {}).update(value)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(doc, sort_keys=False))


def app_phase(opts: Options, kube: dict[str, Kube]) -> list[Step]:
    """The sample app: server on the primary, Service everywhere; on the remotes the traffic generator
    (stopped) and `sleep`, a permanent injected workload so each remote has an Envoy to scrape."""
    topo = opts.topology
    p = topo.primary.name
    steps = []
    for c in topo.clusters:
        files = ["namespace.yaml", "service.yaml"] + (["server.yaml"] if c.is_primary else ["traffic.yaml", "sleep.yaml"])
        argv = ["apply"]
        for name in files:
            argv += ["--filename", str(APP / name)]
        steps.append(Step("app", c.name, "sample app (injected namespace)", kube[c.name].kubectl(*argv), timeout=60))
    steps.append(Step("app", p, "sample server Ready",
                      kube[p].kubectl("rollout", "status", "deployment/helloworld", "--namespace", APP_NS, "--timeout=300s"),
                      timeout=320, waits_for="helloworld with its sidecar"))
    for remote in topo.remotes:
        steps.append(Step("app", remote.name, "sleep Ready (the remote's Envoy)",
                          kube[remote.name].kubectl("rollout", "status", "deployment/sleep", "--namespace", APP_NS,
                                                    "--timeout=300s"),
                          timeout=320, waits_for="sleep with its sidecar"))
    # Optional parts' additions that need the app's namespace (app-metrics).
    steps += plan_parts(Context(topo, opts.versions, lambda name: kube[name], lb_address_step)).after_app
    return steps
