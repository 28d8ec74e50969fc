"""events (optional part): an event caused in each cluster reaches the primary Loki under job=kubernetes-event, cluster=<name>."""

from __future__ import annotations

import time

import pytest

from conformance.probes.events.probe_event import (
    EventCauser, event_age, exporter_counts, exporter_crash_loop, exporter_max_age, exporter_stopped, find_probe,
    label_problem, line_problem, probe_namespace, sends_hopeless, why_not_in_loki,
)
from conformance.core import timing
from conformance.core.eventually import NotYet, eventually
from conformance.core.hops import hop
from conformance.core.http import ServiceError
from conformance.core.outcomes import Failed

pytestmark = [pytest.mark.events, pytest.mark.part("events")]

# The exporter's informer hands a new Event over within a second of its creation (a watch), and its loki sink
# pushes it at once, one request per event (pkg/sinks/loki.go: no batching); Loki makes it queryable as soon as
# the ingester has it. The log canary's budget covers a resync after a dropped watch; with the exporter's config read,
# the wait ends once the probe is older than its maxEventAgeSeconds (later it is dropped on sight) and one push.
EVENT_WAIT = timing.event_delivered()


@pytest.fixture
def causer(access, cluster):
    """Creates the probe Event in the namespace of the cluster's event exporter (as found), and deletes it afterwards."""
    c = EventCauser(access.kube(cluster), probe_namespace(access, cluster))
    yield c
    c.cleanup()


@pytest.mark.writes
@pytest.mark.hop("events[{cluster}]", needs=["loki[{primary}]"])
@pytest.mark.requirement("must")
def test_an_event_reaches_the_primary_loki(access, cluster, primary, loki, causer, record_property):
    """An Event created in the cluster is in the primary Loki under job=kubernetes-event, cluster=<cluster>,
    with its reason and involved object in the line."""
    name = hop("events", cluster, primary)
    deployment = access.located(cluster, "event-exporter").spec.service
    before = exporter_counts(causer.kube, causer.namespace)  # None: not readable, the wait decides alone
    max_age = exporter_max_age(causer.kube, causer.namespace)  # None: not readable, the log canary's wait
    probe = causer.cause()

    hopeless: list[str] = []  # seen at consecutive looks: a send still in flight has had the time between them

    def probe_loki():
        arrival = find_probe(loki, probe, time.time())
        if arrival is None:
            stopped = exporter_stopped(causer.kube, causer.namespace, deployment) or crash_loop()
            if stopped:
                raise Failed(name, f"the event {probe.involved} (reason ConformanceProbe) will not reach Loki: "
                                   f"{cluster.name}'s event exporter is not running: {stopped}", loki_side(), final=True)
            why = sends_hopeless(before, exporter_counts(causer.kube, causer.namespace), cluster.name) if before else None
            hopeless[:] = [*hopeless, why] if why else []
            if len(hopeless) >= 2:
                raise Failed(name, f"the event {probe.involved} (reason ConformanceProbe) will not reach Loki: "
                                   f"{hopeless[-1]}", final=True)
            raise NotYet(f"no entry for {probe.involved} under job=kubernetes-event in the {loki.name}")
        return arrival

    def crash_loop() -> str | None:
        """The exporter crash-looping past the probe's last moment: a later start drops it as too old."""
        if max_age is None:
            return None
        why = exporter_crash_loop(causer.kube, causer.namespace, int(probe.created_at) + max_age[0])
        return why and (f"{why}, after the probe is older than maxEventAgeSeconds {max_age[0]:g} ({max_age[1]}), "
                        "when a starting exporter drops it")

    def diagnose() -> str:
        try:
            in_api = causer.still_there(probe)
        except Exception:  # the diagnosis is best effort: Loki's side is the verdict
            in_api = None
        return why_not_in_loki(loki, probe, in_api, time.time())

    def loki_side() -> str:
        """What Loki has, as evidence beside a verdict from the API server (best effort)."""
        try:
            return diagnose()
        except ServiceError as e:
            return f"what Loki has is unknown: {e.headline}"

    wait = EVENT_WAIT if max_age is None else timing.event_fresh(max_age[0], event_age(probe, time.time()))
    arrival = eventually(probe_loki, hop=name, what=f"the event {probe.involved} (reason ConformanceProbe) not in Loki",
                         wait=wait, diagnose=diagnose)
    seen = time.time()
    # The stream labels are the exporter's configuration: no later event can arrive differently.
    wrong = label_problem(arrival, cluster.name)
    if wrong:
        raise Failed(name, wrong, f"LogQL {probe.selector}\nline: {arrival.line[:500]}", final=True)
    bad_line = line_problem(arrival, probe)
    if bad_line:
        raise Failed(name, bad_line, f"line: {arrival.line[:500]}", final=True)
    record_property("event_propagation_seconds", round(max(0.0, seen - probe.created_at), 3))
    record_property("event_query", probe.selector)
    record_property("event_involved_object", probe.involved)
    record_property("event_exporter_cluster_name", str(arrival.event.get("clusterName", "")))

