"""The fake k8s-sidecar WATCHing a real kube-apiserver: no deletion is lost between two of its watches."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client as kclient
from kubernetes import config as kconfig

from tests.fakes.dashboard_sidecar import FakeDashboardSidecar, SidecarConfig
from tests.real import netns
from tests.real.ground import require_namespace
from tests.real.kube import ControlPlane, kubeconfig_entry, write_kubeconfig
from tests.test_real_kube import ADDRESSES, BINARIES

CLOSED = "http://127.0.0.1:9/api/admin/provisioning/dashboards/reload"  # no Grafana: the reload request is logged


def test_a_configmap_deleted_while_no_watch_runs_has_its_file_removed(tmp_path: Path) -> None:
    """A ConfigMap deleted between two watches: the next one starts from a list, which no longer has it."""
    require_namespace(BINARIES)
    ns, plane = netns.NetNamespace([ADDRESSES["oke"]]), ControlPlane("oke", ADDRESSES["oke"], tmp_path / "oke")
    try:
        with ns:
            plane.start()
            kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", [kubeconfig_entry("oke", plane.server, plane.pki, "admin")])
            core = kclient.CoreV1Api(kconfig.new_client_from_config(str(kubeconfig), context="kind-oke"))
            config = SidecarConfig()
            sidecar = FakeDashboardSidecar(kubeconfig, "kind-oke", tmp_path / "files", config, CLOSED, ("admin", "-"),
                                           watch=True, watch_timeout=1).connect()
            core.create_namespaced_config_map("default", {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "dash", "labels": {config.LABEL: config.LABEL_VALUE}}, "data": {"dash.json": "{}"}})
            sidecar.sync()  # a list (the file written), then one watch of a second
            written = (tmp_path / "files" / "dash.json").exists()
            core.delete_namespaced_config_map("dash", "default")
            sidecar.sync()  # the deletion was made while no watch ran
    finally:
        plane.stop()
        ns.close()
    assert written
    assert not (tmp_path / "files" / "dash.json").exists(), "the file of a ConfigMap deleted between two watches stayed"
    assert not sidecar.errors, sidecar.errors
