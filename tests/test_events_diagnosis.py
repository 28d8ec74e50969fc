"""What the events check says when the probe is not in Loki, or arrives wrong: one table per question."""

from __future__ import annotations

import json

import pytest

from conformance.probes.events.probe_event import Arrival, ProbeEvent, find_probe, label_problem, line_problem, why_not_in_loki

NOW = 1_800_000_000.0
PROBE = ProbeEvent("workstation", "monitoring", "conformance-event-workstation-abc", created_at=NOW - 10)


class Loki:
    """The LokiClient's streams() over a fixed answer: every stream for every query."""

    name = "oke Loki"

    def __init__(self, streams: list[dict]) -> None:
        self._streams = streams

    def streams(self, query, start=None, end=None, limit=100):
        return self._streams


def stream(labels: dict, at: float, line: str = "{}") -> dict:
    return {"stream": labels, "values": [[str(int(at) * 10**9), line]]}


def event_line(reason="ConformanceProbe", kind="ConfigMap", name=PROBE.name) -> str:
    return json.dumps({"reason": reason, "involvedObject": {"kind": kind, "name": name, "namespace": "monitoring"}})


@pytest.mark.parametrize("streams,in_api,says", [
    ([], True, "is in workstation's API server, but Loki has no stream with job=kubernetes-event at all"),
    ([stream({"job": "kubernetes-event", "cluster": "oke"}, NOW - 5)], True,
     "Loki has events of cluster=oke under job=kubernetes-event but none with cluster=workstation: "
     "workstation's exporter does not push here"),
    ([stream({"job": "kubernetes-event", "cluster": "workstation"}, NOW - 60)], True,
     "workstation's exporter pushed here before the Event was created (its newest entry is 60 s old) and nothing "
     "since: it stopped pushing"),
    ([stream({"job": "kubernetes-event", "cluster": "workstation"}, NOW - 2)], True,
     "workstation's exporter pushes (its newest entry is 2 s old), but not this event"),
    ([stream({"job": "kubernetes-event"}, NOW - 2)], True,
     "1 stream(s) with job=kubernetes-event carry no cluster label: an exporter pushes without cluster"),
    ([stream({"job": "kubernetes-event"}, NOW - 2)], True,
     "Loki has events under job=kubernetes-event but none with cluster=workstation"),
    ([], False, "the Event monitoring/conformance-event-workstation-abc is gone from workstation's API server"),
    ([], None, "whether workstation's API server still has the Event is unknown"),
])
def test_why_the_probe_is_not_in_loki(streams, in_api, says):
    assert says in why_not_in_loki(Loki(streams), PROBE, in_api, NOW)


@pytest.mark.parametrize("labels,says", [
    ({"job": "kubernetes-event", "cluster": "workstation"}, None),
    ({"job": "kubernetes-event"}, "the event arrived under job=kubernetes-event with no cluster label, not cluster=workstation"),
    ({"job": "kubernetes-event", "cluster": "oke"}, "with cluster=oke, not cluster=workstation"),
])
def test_the_arrival_s_labels(labels, says):
    problem = label_problem(Arrival(labels, {}, ""), "workstation")
    assert problem == says if says is None else says in problem


@pytest.mark.parametrize("line,says", [
    (event_line(), None),
    (event_line(reason="Scheduled"), "the entry has no reason ConformanceProbe (a receiver layout that drops them?)"),
    (event_line(name="other"), "the entry has no involvedObject ConfigMap/conformance-event-workstation-abc"),
    ("ConformanceProbe conformance-event-workstation-abc", "the entry is not the event as JSON"),
])
def test_the_arrival_s_line(line, says):
    labels = {"job": "kubernetes-event", "cluster": "workstation"}
    arrival = find_probe(Loki([stream(labels, NOW, line)]), PROBE, NOW)
    problem = line_problem(arrival, PROBE)
    assert problem == says if says is None else says in problem


def test_the_check_s_query_names_the_cluster_the_reason_and_the_involved_object():
    assert PROBE.selector == ('{job="kubernetes-event", cluster="workstation"} |= "ConformanceProbe" '
                              '|= "conformance-event-workstation-abc"')


# -- sends_hopeless: the exporter's one send_event_errors counter over every receiver (issue 18) ---------------------

def config_pod(data: dict[str, str]):
    """A stand-in kube and the exporter pod the chart renders (its ConfigMap mounted at /data), holding data."""
    from types import SimpleNamespace
    maps = {"kubernetes-event-exporter": SimpleNamespace(data=data)}
    core = SimpleNamespace(read_namespaced_config_map=lambda name, ns: maps.get(name))
    kube = SimpleNamespace(core=lambda: core, call=lambda what, fn, *args, ok=(): fn(*args))
    volume = SimpleNamespace(name="config", config_map=SimpleNamespace(name="kubernetes-event-exporter"))
    pod = SimpleNamespace(metadata=SimpleNamespace(namespace="events"), spec=SimpleNamespace(volumes=[volume]))
    return kube, pod


TWO_RECEIVERS = """
route:
  routes:
    - match:
        - receiver: loki
        - receiver: audit-webhook
receivers:
  - name: loki
    loki: {url: http://loki.logging:3100/loki/api/v1/push}
  - name: audit-webhook
    webhook: {endpoint: http://audit.example/events}
"""


def test_with_two_receivers_a_failing_other_receiver_is_not_taken_for_a_hopeless_loki() -> None:
    from conformance.probes.events.probe_event import SendCounts, exporter_config, sending_rules, sends_hopeless
    kube, pod = config_pod({"config.yaml": TWO_RECEIVERS})
    doc, where = exporter_config(kube, pod)
    assert where == "ConfigMap events/kubernetes-event-exporter config.yaml" and sending_rules(doc["route"]) == 2
    before = SendCounts(10, 0, 2, where)
    # Every event failed once: the webhook's sends (or Loki's), not both: the probe may still arrive.
    assert sends_hopeless(before, SendCounts(13, 3, 2, where), "workstation") is None
    why = sends_hopeless(before, SendCounts(13, 6, 2, where), "workstation")
    assert why.startswith("workstation's exporter received 3 event(s) since the probe was created and every send "
                          "failed (event_exporter_send_event_errors +6; 2 sends per event at most, counted from the match "
                          "rules naming a receiver in its ConfigMap events/kubernetes-event-exporter config.yaml)")


def test_without_the_exporters_config_its_counters_decide_nothing() -> None:
    from conformance.probes.events.probe_event import SendCounts, exporter_config, sends_hopeless
    kube, pod = config_pod({"other.txt": "not: [a config"})
    assert exporter_config(kube, pod) is None
    assert sends_hopeless(SendCounts(10, 0), SendCounts(13, 3), "workstation") is None


def test_the_project_s_config_sends_each_event_once() -> None:
    import yaml

    from conformance.probes.events.probe_event import sending_rules
    from conformance.core.stack import STACK_DIR
    config = yaml.safe_load((STACK_DIR / "values" / "kubernetes-event-exporter.yaml").read_text())["config"]
    assert sending_rules(config["route"]) == 1
