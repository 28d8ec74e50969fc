"""The fake API server's ConfigMaps as the kubernetes client sees them: create, label-selected lists, delete."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.fakes.kubeapi import FakeKubeAPI


@pytest.fixture
def core(tmp_path):
    with FakeKubeAPI("oke") as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        api.add_namespace("a")
        api.add_namespace("b")
        yield client.CoreV1Api(config.new_client_from_config(str(kubeconfig), context="kind-oke"))


def cm(name: str, labels: dict, data: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels},
            "data": data or {"d.json": "{}"}}


def test_lists_select_by_label_in_one_or_every_namespace(core):
    core.create_namespaced_config_map("a", cm("one", {"grafana_dashboard": "1"}))
    core.create_namespaced_config_map("b", cm("two", {"grafana_dashboard": "true"}))
    core.create_namespaced_config_map("b", cm("three", {"other": "x"}))
    every = core.list_config_map_for_all_namespaces(label_selector="grafana_dashboard")
    assert sorted(i.metadata.name for i in every.items) == ["one", "two"]  # LABEL alone: any value
    assert [i.metadata.name for i in core.list_config_map_for_all_namespaces(label_selector="grafana_dashboard=1").items] == ["one"]
    assert core.list_namespaced_config_map("a", label_selector="grafana_dashboard=true").items == []


@pytest.mark.parametrize("namespace, body, status, reason", [
    ("missing", cm("x", {}), 404, "NotFound"),
    ("a", cm("x", {}, {"bad key/": "1"}), 422, "Invalid"),
])
def test_a_create_the_api_server_refuses_is_its_status(core, namespace, body, status, reason):
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map(namespace, body)
    assert e.value.status == status and json.loads(e.value.body)["reason"] == reason


def test_create_twice_conflicts_and_delete_answers_a_success_status(core):
    core.create_namespaced_config_map("a", cm("x", {}))
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("a", cm("x", {}))
    assert e.value.status == 409
    answer = core.delete_namespaced_config_map("x", "a")  # the client hands back the Status as a dict
    assert (answer["status"] if isinstance(answer, dict) else answer.status) == "Success"
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("x", "a")
    assert e.value.status == 404
