"""What the plan deploys on each cluster, read from the calls `up` makes against the fakes."""

from __future__ import annotations


import yaml

from conformance.core.versions import load_versions
from conformance.core.stack import STACK_DIR

APP = STACK_DIR / "app"


def applies(happy_up, cluster: str, filename: str) -> bool:
    return any(f"kind-{cluster}" in c and "apply" in c and f"/{filename}" in c for c in happy_up.fakebin.commands())


# -- a permanent Envoy on every remote (issue 8, item 2) --------------------------------------------


def test_sleep_runs_on_every_remote_and_not_on_the_primary(happy_up):
    assert happy_up.code == 0, happy_up.out
    assert applies(happy_up, "workstation", "app/sleep.yaml")
    assert not applies(happy_up, "oke", "app/sleep.yaml"), "the primary has helloworld's Envoy"
    commands = happy_up.fakebin.commands()
    ready = [c for c in commands if "rollout status deployment/sleep" in c]
    assert len(ready) == 1 and "kind-workstation" in ready[0] and "--namespace sample" in ready[0]


def test_sleep_is_the_workload_the_proving_ground_assumes():
    (doc,) = [d for d in yaml.safe_load_all((APP / "sleep.yaml").read_text()) if d]
    assert (doc["kind"], doc["metadata"]["name"], doc["metadata"]["namespace"]) == ("Deployment", "sleep", "sample")
    assert doc["spec"]["replicas"] == 1, "never scaled to 0 like the traffic generator"
    assert doc["spec"]["template"]["metadata"]["labels"]["app"] == "sleep"
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"docker.io/curlimages/curl:{load_versions().apps['curl']}"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["command"] == ["/bin/sleep", "infinity"]  # as Istio 1.29.6 samples/sleep/sleep.yaml


def test_the_sample_namespace_is_injected():
    ns = yaml.safe_load((APP / "namespace.yaml").read_text())
    assert ns["metadata"]["name"] == "sample" and ns["metadata"]["labels"]["istio-injection"] == "enabled"


# -- Grafana's pod with --offline: no volume name twice (issue 8, item 7) ----------------------------
#
# helm cannot run here, so the two rules that decide the Grafana pod's dashboard
# volumes are modelled, each from its source:
# - Helm v3.19.0 pkg/cli/values/options.go mergeMaps: -f files merge in order, a later null
#   replaces; pkg/chartutil/coalesce.go then deletes a null only where the chart's
#   defaults have the key (coalesceValues: `value == nil && !merge`).
# - grafana chart 12.11.1 templates/_pod.tpl: one `dashboards-<provider>` volume per
#   key of .Values.dashboards (the download ConfigMaps) and one per key of
#   .Values.dashboardsConfigMaps. Its values.yaml defaults both to {}.
GRAFANA_DEFAULTS = {"dashboards": {}, "dashboardsConfigMaps": {}}


def merge_files(*docs: dict) -> dict:
    out: dict = {}
    for doc in docs:
        for k, v in doc.items():
            out[k] = merge_files(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def coalesce(values: dict, defaults: dict) -> dict:
    out = dict(values)
    for k, default in defaults.items():
        if k in out and out[k] is None:
            del out[k]
        elif isinstance(default, dict) and isinstance(out.get(k), dict):
            out[k] = coalesce(out[k], default)
        elif k not in out:
            out[k] = default
    return out


def grafana_dashboard_volumes(grafana: dict) -> list[str]:
    return ([f"dashboards-{p}" for p in grafana.get("dashboards") or {}]
            + [f"dashboards-{p}" for p in grafana.get("dashboardsConfigMaps") or {}])


def offline_grafana_values(overlay_text: str) -> dict:
    base = yaml.safe_load((STACK_DIR / "values" / "kube-prometheus-stack.yaml").read_text())
    merged = merge_files(base, yaml.safe_load(overlay_text))
    return coalesce(merged["grafana"], GRAFANA_DEFAULTS)


def test_offline_grafana_pod_repeats_no_volume_name():
    from conformance.provision import dashboards
    grafana = offline_grafana_values(dashboards.offline_overlay(dashboards.declared()))
    volumes = grafana_dashboard_volumes(grafana)
    assert sorted(volumes) == ["dashboards-istio", "dashboards-logs", "dashboards-node"]
    assert "dashboards" not in grafana, "no download init container, no download volumes"


def test_the_old_per_provider_nulls_repeat_three_volume_names():
    # What the overlay used to say: the model reproduces the duplicates the issue found with helm.
    from conformance.provision import dashboards
    old = yaml.safe_dump({"grafana": {"dashboards": {p: None for p in ("istio", "logs", "node")},
                                      "dashboardsConfigMaps": {p: dashboards.configmap_name(p)
                                                               for p in ("istio", "logs", "node")}}})
    volumes = grafana_dashboard_volumes(offline_grafana_values(old))
    assert sorted(v for v in set(volumes) if volumes.count(v) > 1) == [
        "dashboards-istio", "dashboards-logs", "dashboards-node"]


def test_no_manifest_the_plan_applies_repeats_a_volume_name():
    for path in sorted((STACK_DIR / "app").glob("*.yaml")) + sorted((STACK_DIR / "manifests").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            spec = ((doc or {}).get("spec") or {}).get("template", {}).get("spec") or {}
            names = [v["name"] for v in spec.get("volumes") or []]
            assert len(names) == len(set(names)), path.name


# -- every declared dashboard is provisioned with panels ---------------------------------------------


def test_every_declared_dashboard_is_read_back_from_grafana_after_the_install(happy_up):
    from conformance.provision import dashboards
    commands = happy_up.fakebin.commands()
    kps = next(i for i, c in enumerate(commands) if "helm" in c and "kube-prometheus-stack" in c and "kind-oke" in c)
    for d in dashboards.declared():
        i = next(i for i, c in enumerate(commands) if c.endswith(f"cat {d.path}"))
        assert i > kps and "exec deployment/kube-prometheus-stack-grafana" in commands[i]
        assert "--container grafana" in commands[i]


def test_an_empty_dashboard_file_fails_the_bring_up_naming_it(provision, fakebin):
    # What grafana.com answering 404 leaves: the chart's `curl -skf | sed > file` has no pipefail.
    fakebin.scenario({"tool": "kubectl", "match": ["exec", "cat", "/var/lib/grafana/dashboards/logs/logs-app.json"],
                      "stdout": ""})
    code, out = provision("up")
    assert code == 1
    assert ("bring-up failed at stack oke: dashboard Logs/logs-app provisioned with panels: "
            "/var/lib/grafana/dashboards/logs/logs-app.json in Grafana: the file is empty") in out
    assert "grafana.com dashboard 13639 revision 2 did not provision" in out


# -- the remote Kiali service account: what Kiali's own script grants, no more ----------------------

# kiali/helm-charts kiali-server/templates/role-viewer.yaml at v2.29.0, as
# kiali/kiali hack/istio/multicluster/kiali-prepare-remote-cluster.sh (v2.29.0)
# renders it: view_only_mode, cluster_wide_access, no disabled features.
# (apiGroups, resources, verbs, resourceNames)
KIALI_REMOTE_RULES = {
    (("",), ("configmaps", "pods/log"), ("get", "list", "watch"), ()),
    (("",), ("namespaces", "pods", "replicationcontrollers", "services"), ("get", "list", "watch"), ()),
    (("",), ("pods/portforward",), ("create",), ()),
    (("apps",), ("daemonsets", "deployments", "replicasets", "statefulsets"), ("get", "list", "watch"), ()),
    (("batch",), ("cronjobs", "jobs"), ("get", "list", "watch"), ()),
    (("networking.istio.io", "security.istio.io", "extensions.istio.io", "telemetry.istio.io",
      "inference.networking.k8s.io"), ("*",), ("get", "list", "watch"), ()),
    (("gateway.networking.k8s.io",), ("gatewayclasses", "gateways", "grpcroutes", "httproutes", "referencegrants",
                                      "tcproutes", "tlsroutes"), ("get", "list", "watch"), ()),
    (("apps.openshift.io",), ("deploymentconfigs",), ("get", "list", "watch"), ()),
    (("route.openshift.io",), ("routes",), ("get",), ()),
    (("authentication.k8s.io",), ("tokenreviews",), ("create",), ()),
    (("oauth.openshift.io",), ("oauthclients",), ("get",), ("kiali-monitoring",)),
    (("admissionregistration.k8s.io",), ("mutatingwebhookconfigurations",), ("list",), ()),
}


def kiali_remote_role() -> dict:
    docs = [d for d in yaml.safe_load_all((STACK_DIR / "manifests" / "kiali-remote.yaml").read_text()) if d]
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    return role


def test_the_remote_kiali_role_grants_exactly_what_kiali_s_script_grants():
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"]), tuple(r["verbs"]), tuple(r.get("resourceNames", ())))
             for r in kiali_remote_role()["rules"]}
    assert rules == KIALI_REMOTE_RULES


def test_the_remote_kiali_role_cannot_read_secrets():
    for r in kiali_remote_role()["rules"]:
        if "" in r["apiGroups"]:
            assert "secrets" not in r["resources"] and "*" not in r["resources"], r


# -- chart values the issue corrects ------------------------------------------------------------------


def values(name: str) -> dict:
    return yaml.safe_load((STACK_DIR / "values" / name).read_text())


def test_kiali_operator_does_not_pull_what_preload_loaded():
    assert values("kiali-operator.yaml")["image"]["pullPolicy"] == "IfNotPresent"  # the chart's default is Always


def test_loki_stack_sets_no_key_the_chart_never_reads():
    # loki-stack 2.10.3 reads loki.isDefault only in its datasource template, which the values switch off.
    loki = values("loki-stack.yaml")
    assert "isDefault" not in loki["loki"] and loki["grafana"]["sidecar"]["datasources"]["enabled"] is False


def test_istiod_targets_carry_the_app_label_the_performance_dashboard_selects():
    monitor = yaml.safe_load((STACK_DIR / "manifests" / "istiod-servicemonitor.yaml").read_text())
    # Istio 1.29.6 istio-performance-dashboard.json selects {app="istiod"}; istiod's pods are labelled app: istiod.
    assert monitor["spec"]["podTargetLabels"] == ["app"]
