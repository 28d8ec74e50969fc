"""What the plan deploys on each cluster, read from the calls `up` makes against the fakes."""

from __future__ import annotations

from pathlib import Path

import yaml

from conformance.provision.versions import load_versions
from conformance.stack import STACK_DIR

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
