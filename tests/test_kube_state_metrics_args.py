"""What kube-state-metrics' own arguments say about the canary's namespace, as its Deployment's pod carries them."""

from __future__ import annotations

from conformance.kube_state_metrics import restriction

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
