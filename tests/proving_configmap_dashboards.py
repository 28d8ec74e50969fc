"""The proving ground of the configmap-dashboards part: the kube stack plus Grafana's sidecar provider and the sidecar.

On the fake API servers of tests/proving_kube.py: the Grafana pod runs a grafana-sc-dashboard container with the env
the chart renders from the part's values (stack/values/kube-prometheus-stack-configmap-dashboards.yaml), the
provider ConfigMap holds the provider.yaml of templates/_config.tpl, FakeGrafana provisions that provider's folder
as Grafana's file reader does, and FakeDashboardSidecar syncs labelled ConfigMaps of the oke API server into it.
Each argument is a fault the stack can have; the defaults are the part as the bring-up installs it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import yaml
from kubernetes import client as kclient

from conformance.probes.configmap_dashboards.sidecar import PROVIDER_KEY, SIDECAR_CONTAINER, sidecar_spec
from conformance.core.stack import stack_services
from tests.fakes.dashboard_sidecar import FakeDashboardSidecar, SidecarConfig
from tests.fakes.grafana import FakeGrafana, FileProvider
from tests.proving_ground import PrometheusPair
from tests.proving_kube import GRAFANA_POD, KubeStack, start_kube_stack

RELOAD_PATH = "/api/admin/provisioning/dashboards/reload"


def part_sidecar_config() -> SidecarConfig:
    """The env the chart renders from the part's values (LABEL, LABEL_VALUE, NAMESPACE, FOLDER_ANNOTATION)."""
    spec = sidecar_spec()
    return SidecarConfig(LABEL=spec.label, LABEL_VALUE=spec.label_value, NAMESPACE="ALL",
                         FOLDER_ANNOTATION=spec.folder_annotation)


def provider_yaml(p: FileProvider, folder: str) -> str:
    """grafana chart 12.11.1 templates/_config.tpl grafana.configDashboardProviderData for these settings."""
    provider = {"name": p.name, "orgId": 1}
    if not p.folders_from_files_structure:
        provider.update(folder=p.folder, folderUid="")
    provider.update(type="file", disableDeletion=p.disable_deletion, allowUiUpdates=False, updateIntervalSeconds=30,
                    options={"foldersFromFilesStructure": p.folders_from_files_structure, "path": folder})
    return yaml.safe_dump({"apiVersion": 1, "providers": [provider]}, sort_keys=False)


def watching_sidecar(core: kclient.CoreV1Api, kubeconfig: Path, context: str, grafana: FakeGrafana, files: Path,
                     config: SidecarConfig | None = None, log: Callable[[str], None] = lambda line: None,
                     **options: Any) -> FakeDashboardSidecar:
    """On a real API server (inside its ground's namespace): the chart's provider ConfigMap, that provider in Grafana,
    and the sidecar WATCHing (the chart's METHOD); the Grafana pod with the sidecar's env is the caller's.
    options: FakeDashboardSidecar's (watch_timeout)."""
    config = config or part_sidecar_config()
    svc = stack_services()["grafana"]
    provider = FileProvider("sidecarProvider", files, folders_from_files_structure=True)
    core.create_namespaced_config_map(svc.namespace, {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{svc.service}-config-dashboards"},
        "data": {PROVIDER_KEY: provider_yaml(provider, config.FOLDER)}})
    grafana.add_file_provider(provider)
    return FakeDashboardSidecar(kubeconfig, context, files, config, grafana.url + RELOAD_PATH,
                                (grafana.admin_user, grafana.admin_password), watch=True, log=log, **options).start()


@dataclass
class DashboardsGround:
    stack: KubeStack
    sidecar: FakeDashboardSidecar
    provider: FileProvider

    def topology(self) -> Path:
        """Both clusters through their API servers, with the part listed."""
        path = self.stack.topology()
        doc = yaml.safe_load(path.read_text())
        doc["parts"] = ["configmap-dashboards"]
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def stop(self) -> None:
        self.sidecar.stop()
        self.stack.stop()

    def __enter__(self) -> "DashboardsGround":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_dashboards_ground(folder: Path, pair: PrometheusPair, *, config: SidecarConfig | None = None,
                            folders_from_files_structure: bool = True, disable_deletion: bool = False,
                            keep_files: bool = False, names: str = "bring-up") -> DashboardsGround:
    """The kube stack with the sidecar (env `config`, the part's by default) and Grafana's sidecarProvider.
    names="other": Grafana as its own release `grafana` in namespace `grafana` (start_kube_stack's install_elsewhere)."""
    config = config or part_sidecar_config()
    pair.primary.wait_for_targets(1)  # the dashboard's `sum(up)` needs the first scrape
    stack = start_kube_stack(folder, pair, names=names)
    try:
        oke, grafana, svc = stack.apis["oke"], stack.grafana, stack_services()["grafana"]
        labels = {"app.kubernetes.io/name": "grafana"}
        if names == "other":  # grafana chart 12.11.1: fullname = the release, selectorLabels name + instance
            svc = replace(svc, namespace="grafana", service="grafana")
            labels["app.kubernetes.io/instance"] = "grafana"
        files = folder / "sc-dashboards"  # the emptyDir both containers mount at FOLDER
        files.mkdir(parents=True, exist_ok=True)
        provider = FileProvider("sidecarProvider", files, folders_from_files_structure=folders_from_files_structure,
                                disable_deletion=disable_deletion)
        oke.add_configmap(svc.namespace, f"{svc.service}-config-dashboards", {PROVIDER_KEY: provider_yaml(provider, config.FOLDER)})
        oke.add_pod(svc.namespace, GRAFANA_POD, labels=labels,
                    containers=[{"name": "grafana", "image": "docker.io/grafana/grafana:13.2.0"},
                                {"name": SIDECAR_CONTAINER, "image": "quay.io/kiwigrid/k8s-sidecar:2.10.1",
                                 "env": config.env()}],
                    logs={"grafana": "".join(line + "\n" for line in grafana.log_lines), SIDECAR_CONTAINER: ""})
        grafana.add_file_provider(provider)
        sidecar = FakeDashboardSidecar(stack.kubeconfig, "kind-oke", files, config, grafana.url + RELOAD_PATH,
                                       (grafana.admin_user, grafana.admin_password), keep_files=keep_files,
                                       log=lambda line: oke.append_log(svc.namespace, GRAFANA_POD, SIDECAR_CONTAINER, line))
        sidecar.start()
    except BaseException:
        stack.stop()
        raise
    return DashboardsGround(stack, sidecar, provider)
