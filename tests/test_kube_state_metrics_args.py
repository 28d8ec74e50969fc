"""What kube-state-metrics' own arguments and its pod's state say about the canary's namespace and its target."""

from __future__ import annotations

import json
import time

from kubernetes import client

from conformance.probes.kube_state_metrics.target import configured_away, crash_loop, ksm_job, restriction

CHART = ["--port=8080", "--resources=configmaps,pods,secrets"]


def test_the_charts_args_describe_every_namespace():
    assert restriction(CHART, "conformance-canary-state") is None
    assert restriction(["--port=8080"], "conformance-canary-state") is None  # no --resources: every default store


def test_namespaces_that_leave_the_canarys_out_are_named():
    assert restriction(CHART + ["--namespaces=kube-system,monitoring"], "conformance-canary-state") == \
        "it watches --namespaces=kube-system,monitoring only, not conformance-canary-state"
    assert restriction(CHART + ["--namespaces=conformance-canary-state,monitoring"], "conformance-canary-state") is None


def test_a_denylist_with_the_canarys_namespace_is_named():
    assert restriction(CHART + ["--namespaces-denylist=conformance-canary-state"], "conformance-canary-state") == \
        "its --namespaces-denylist=conformance-canary-state leaves conformance-canary-state out"


def test_resources_without_pods_are_named():
    assert restriction(["--resources=configmaps,secrets"], "conformance-canary-state") == \
        "its --resources=configmaps,secrets has no pods: it describes no pod at all"


def test_an_options_file_leaves_the_judgement_to_the_wait():
    assert restriction(CHART + ["--namespaces=kube-system", "--config=/etc/ksm/config.yaml"], "conformance-canary-state") is None


# configured_away and crash_loop read the target's pod; these stand-ins answer as the API server and Prometheus do.

class FakeProm:
    name = "workstation Prometheus"

    def __init__(self, targets: list[dict]) -> None:
        self.targets = targets

    def active_targets(self) -> list[dict]:
        return self.targets


class FakeKube:
    """kube.call / kube.core().read_namespaced_pod over one pod (None: 404)."""

    def __init__(self, pod) -> None:
        self.pod = pod

    def core(self):
        return self

    def read_namespaced_pod(self, name: str, namespace: str):
        return self.pod

    def call(self, what, fn, *args, ok=(), **kwargs):
        return fn(*args)


def ksm_target(health: str = "up") -> dict:
    return {"scrapePool": f"{ksm_job().monitor}/0", "health": health,
            "labels": {"namespace": "monitoring", "pod": "ksm-0"}}


def ksm_pod(args: list[str], status: dict | None = None):
    doc = {"metadata": {"name": "ksm-0", "namespace": "monitoring"},
           "spec": {"containers": [{"name": "kube-state-metrics", "args": args}]}, "status": status or {}}
    return client.ApiClient().deserialize(json.dumps(doc), "V1Pod", "application/json")  # as the client reads a pod


def test_args_that_leave_the_namespace_out_are_read_from_the_targets_pod():
    verdict = configured_away(FakeKube(ksm_pod(CHART + ["--namespaces=kube-system"])), FakeProm([ksm_target()]), "x")
    assert verdict.never == "pod monitoring/ksm-0: it watches --namespaces=kube-system only, not x"
    assert configured_away(FakeKube(ksm_pod(CHART)), FakeProm([ksm_target()]), "x").never is None


def test_args_that_cannot_be_read_say_why():
    assert configured_away(FakeKube(None), FakeProm([ksm_target()]), "x").unread == \
        "its target's pod monitoring/ksm-0 is not in the API server"
    assert configured_away(FakeKube(ksm_pod(["--config=/etc/c.yaml"])), FakeProm([ksm_target()]), "x").unread == \
        "pod monitoring/ksm-0 reads an options file (--config), which overrides its flags"
    assert configured_away(FakeKube(None), FakeProm([]), "x").unread == \
        "the workstation Prometheus has no kube-state-metrics target to read the pod of"


def crash_status(backoff: str, finished: float) -> dict:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(finished))
    return {"containerStatuses": [{
        "name": "kube-state-metrics", "ready": False, "restartCount": 4, "image": "i", "imageID": "",
        "state": {"waiting": {"reason": "CrashLoopBackOff",
                              "message": f"back-off {backoff} restarting failed container=kube-state-metrics pod=x"}},
        "lastState": {"terminated": {"exitCode": 2, "reason": "Error", "finishedAt": stamp}}}]}


def test_a_back_off_past_the_wait_is_named_and_one_within_it_waits():
    now = time.time()
    long = FakeKube(ksm_pod(CHART, crash_status("5m0s", now)))
    why = crash_loop(long, FakeProm([ksm_target("down")]), until=now + 60)
    assert why.startswith("pod monitoring/ksm-0 is in CrashLoopBackOff (4 restarts, last Error (code 2)): the kubelet "
                          "starts it again only "), why
    assert why.endswith("(back-off 5m0s), after this wait; its log says why it exits")
    short = FakeKube(ksm_pod(CHART, crash_status("20s", now)))
    assert crash_loop(short, FakeProm([ksm_target("down")]), until=now + 60) is None  # starts again within the wait
    running = FakeKube(ksm_pod(CHART, {"containerStatuses": [{"name": "kube-state-metrics", "ready": True,
                                                              "restartCount": 0, "image": "i", "imageID": "",
                                                              "state": {"running": {}}}]}))
    assert crash_loop(running, FakeProm([ksm_target("down")]), until=now + 60) is None
