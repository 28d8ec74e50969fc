"""The events suite against the real kubernetes-event-exporter v1.6.1 on real control planes, healthy and with each fault."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from kubernetes import client as kclient

from tests.proving_events import (
    CONTROL_PLANE, EventsGround, chart_pod, crash_looping, exporter_config, running_again, start_events_ground,
)
from tests.proving_realkube import ADDRESSES, apply
from tests.real.ground import in_namespace
from tests.suite_runner import SuiteRun, run_suites

# One ground for the module: its tests stay on one worker (pytest-xdist --dist loadgroup), so it starts once.
pytestmark = pytest.mark.xdist_group("events-ground")

CASE = "suites.test_events::test_an_event_reaches_the_primary_loki[{}]"
HOP = "{} event exporter → oke Loki"


def ground_for(folder: Path) -> Iterator[EventsGround]:
    return in_namespace(lambda ns: start_events_ground(folder, ns), (*CONTROL_PLANE, "kubernetes-event-exporter"),
                        ADDRESSES.values())


@pytest.fixture(scope="module")
def ground(tmp_path_factory) -> Iterator[EventsGround]:
    """One ground for the module; each test that breaks an exporter puts the healthy one back."""
    yield from ground_for(tmp_path_factory.mktemp("events"))


@pytest.fixture
def healthy_after(ground) -> Iterator[EventsGround]:
    yield ground
    for c in ground.planes:
        ground.healthy(c)


def run(ground: EventsGround, *args: str, parts=("events",)) -> SuiteRun:
    with ground.ns:  # the child pytest reaches the API servers (and Loki through them) inside the namespace
        return run_suites(ground.folder, "--topology", str(ground.topology(parts)), "-m", "events", *args, timeout=240)


def message(result: SuiteRun, case: str) -> str:
    return result.failure(case)


def test_every_cluster_s_event_reaches_the_primary_loki_through_the_real_exporter(ground):
    result = run(ground)
    assert result.code == 0, result.output
    for c in ("oke", "workstation"):
        props = result.properties(CASE.format(c))
        assert props["outcome"] == "passed"
        assert props["event_query"].startswith(f'{{job="kubernetes-event", cluster="{c}"}} |= "ConformanceProbe"')
        assert props["event_involved_object"].startswith(f"ConfigMap/conformance-event-{c}-")
        assert float(props["event_propagation_seconds"]) < 60  # inside the wait
    # What the real exporter pushed, as the fake Loki stored it: its stream labels and its line, the event as JSON.
    probes = [s for s in ground.loki.streams() if any("ConformanceProbe" in v[1] for v in s["values"])]
    assert {s["stream"]["cluster"] for s in probes} == {"oke", "workstation"}
    assert all(s["stream"] == {"job": "kubernetes-event", "cluster": s["stream"]["cluster"]} for s in probes)
    # The exporter looked the involved object up with the chart's ServiceAccount and rules: its labels are in the line.
    for s in probes:
        involved = json.loads(next(v[1] for v in s["values"] if "ConformanceProbe" in v[1]))["involvedObject"]
        assert involved["labels"] == {"app.kubernetes.io/managed-by": "monitoring-conformance"} and not involved["deleted"]
    assert "optional parts: events" in result.output


def test_the_exporter_pushing_without_the_cluster_label_fails_its_hop_at_once(ground, healthy_after):
    ground.configure("workstation", exporter_config("workstation", ground.loki_push_url,
                                                    stream_labels={"job": "kubernetes-event"}))
    result = run(ground, "-k", "workstation")
    assert result.code == 1, result.output
    props = result.properties(CASE.format("workstation"))
    assert props["outcome"] == "failed"
    text = message(result, CASE.format("workstation"))
    assert HOP.format("workstation") in text
    assert ("the event arrived under job=kubernetes-event with no cluster label, not cluster=workstation "
            '(the exporter\'s loki receiver streamLabels: {"job": "kubernetes-event"})') in text


def test_an_exporter_labelling_another_cluster_s_name_is_named(ground, healthy_after):
    ground.configure("workstation", exporter_config("oke", ground.loki_push_url))
    result = run(ground, "-k", "workstation")
    assert result.code == 1, result.output
    text = message(result, CASE.format("workstation"))
    assert HOP.format("workstation") in text
    assert "the event arrived under job=kubernetes-event with cluster=oke, not cluster=workstation" in text


def test_an_exporter_whose_every_send_fails_is_named_at_once_from_its_counters(ground, healthy_after):
    closed = ground.loki_push_url.replace(":3100/", ":1/")  # nothing listens on port 1
    exporter = ground.configure("workstation", exporter_config("workstation", closed))
    result = run(ground, "-k", "workstation")  # the real wait: the exporter's own counters say it at once
    assert result.code == 1, result.output
    props = result.properties(CASE.format("workstation"))
    assert props["outcome"] == "failed"
    text = message(result, CASE.format("workstation"))
    assert text.startswith(f"{HOP.format('workstation')}: the event ConfigMap/conformance-event-workstation-"), text
    assert "(reason ConformanceProbe) will not reach Loki: workstation's exporter received " in text
    assert ("event(s) since the probe was created and every send failed (event_exporter_send_event_errors +" in text
            and "): it drops a failed event and does not retry (pkg/exporter/channel_registry.go)" in text)
    # The real exporter saw the event and failed to send it (and does not retry: pkg/exporter/channel_registry.go
    # logs the error at debug level only); its own counter says so, as the check read it.
    with ground.ns:
        assert exporter.metric("event_exporter_send_event_errors") >= 1


def test_an_exporter_with_no_pod_and_its_deployment_at_zero_is_named_at_once_with_what_loki_has(
        ground, healthy_after):
    closed = ground.loki_push_url.replace(":3100/", ":1/")  # the process outside keeps failing: nothing arrives
    ground.configure("workstation", exporter_config("workstation", closed))
    ground.empty_loki()  # workstation's events of the earlier tests are not in the window
    run(ground, "-k", "oke")  # oke's exporter pushes an event now: Loki has its streams in the window
    with ground.ns:
        kclient.CoreV1Api(ground.api("workstation")).delete_namespaced_pod(chart_pod()["metadata"]["name"],
                                                                         "monitoring", grace_period_seconds=0)
    try:
        result = run(ground, "-k", "workstation")  # the real wait: the API server says it at the first look
    finally:
        with ground.ns:
            apply(ground.api("workstation"), [chart_pod()])
    assert result.code == 1, result.output
    props = result.properties(CASE.format("workstation"))
    assert props["outcome"] == "failed"
    text = message(result, CASE.format("workstation"))
    assert text.startswith(f"{HOP.format('workstation')}: the event ConfigMap/conformance-event-workstation-"), text
    assert ("will not reach Loki: workstation's event exporter is not running: no pod labelled "
            "app.kubernetes.io/name=kubernetes-event-exporter exists in namespace monitoring and its Deployment "
            "monitoring/kubernetes-event-exporter is scaled to 0 replicas: nothing in the cluster starts an exporter"
            ) in text
    assert "is in workstation's API server; Loki has events of cluster=oke under job=kubernetes-event but none " \
           "with cluster=workstation: workstation's exporter does not push here" in text


def test_a_crash_looping_exporter_is_named_at_once_with_its_back_off(ground, healthy_after):
    ground.exporters["workstation"].stop()
    api = ground.api("workstation")
    try:
        with ground.ns:
            crash_looping(api)  # the kubelet's account of it: next start in 5 min, long after the probe's 60 s
        result = run(ground, "-k", "workstation")  # the real wait: the back-off outlasts the probe's age
    finally:
        with ground.ns:
            running_again(api)
    assert result.code == 1, result.output
    props = result.properties(CASE.format("workstation"))
    assert props["outcome"] == "failed"
    text = message(result, CASE.format("workstation"))
    assert text.startswith(f"{HOP.format('workstation')}: the event ConfigMap/conformance-event-workstation-"), text
    assert ("will not reach Loki: workstation's event exporter is not running: pod monitoring/"
            f"{chart_pod()['metadata']['name']} container event-exporter is in CrashLoopBackOff (6 restarts, last Error "
            "(code 1)): the kubelet starts it again only ") in text
    assert (" s from now (back-off 5m0s), after the probe is older than maxEventAgeSeconds 60 (ConfigMap "
            "monitoring/kubernetes-event-exporter config.yaml), when a starting exporter drops it") in text


def test_an_exporter_that_stopped_pushing_is_told_from_one_that_never_did(ground, healthy_after):
    run(ground, "-k", "workstation")  # workstation's exporter has pushed: its streams are in Loki's window
    ground.exporters["workstation"].stop()
    result = run(ground, "-k", "workstation", "--timeout-scale", "0.2")
    assert result.code == 1, result.output
    text = message(result, CASE.format("workstation"))
    assert HOP.format("workstation") in text
    assert "workstation's exporter pushed here before the Event was created (its newest entry is " in text
    assert "and nothing since: it stopped pushing" in text


def test_no_exporter_pushing_at_all_is_told_apart(ground, healthy_after):
    for c in ground.planes:
        ground.exporters[c].stop()
    ground.empty_loki()  # nothing pushed in the window: the earlier tests' events are not in it
    result = run(ground, "-k", "oke", "--timeout-scale", "0.2")
    assert result.code == 1, result.output
    text = message(result, CASE.format("oke"))
    assert HOP.format("oke") in text
    assert "but Loki has no stream with job=kubernetes-event at all in the last 5 min: no exporter pushes to it" in text


def test_a_stack_without_the_part_skips_the_check_with_the_reason(ground):
    result = run(ground, "-rs", parts=())
    assert result.code == 5, result.output  # nothing else was selected: no check ran (INCOMPLETE), none failed
    for c in ("oke", "workstation"):
        assert result.properties(CASE.format(c))["outcome"] == "not_applicable"
    assert "events is not a part of this stack (topology" in result.output
