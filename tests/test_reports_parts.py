"""The report's picture grows an optional part's hops only when the run's stack has that part: one table row a case."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from conformance.reports import picture
from conformance.reports.hops import hops_for
from conformance.reports.model import AREAS, Check, Run, check_from_properties

BASE = {"clusters": "oke,workstation", "primary": "oke"}


def check(area: str, name: str, cluster: str, outcome: str, message: str = "") -> Check:
    return Check(area=area, name=name, cluster=cluster, outcome=outcome, requirement="must", seconds=1.0,
                 properties={}, message=message)


def titles(run: Run, area: str) -> list[str]:
    return [h.title for h in hops_for(run, "oke") if h.area == area]


ABSENT = {  # area: what the picture of a stack without the part holds none of
    "alerting": ("Alertmanager",),
    "app_metrics": (">app</text>",),
    "configmap_dashboards": (">ConfigMap</text>",),
    "events": ("event exporter",),
    "kube_state_metrics": ("kube-state-metrics",),
    "kube_bench": ("Pushgateway", "kube-bench"),
    "tracing": ("Jaeger",),
}


@pytest.mark.parametrize("area", ABSENT)
def test_a_stack_without_the_part_has_neither_its_hops_nor_its_nodes_in_its_picture(area):
    run = Run(checks=[], properties=BASE)
    assert titles(run, area) == []
    svg = picture.render(run)
    for text in ABSENT[area]:
        assert text not in svg


@dataclass(frozen=True)
class WithPart:
    """A run with the part on: its checks, the hop titles it has, and what its picture draws."""

    area: str
    part: tuple[str, str]  # the run property part.<name> and its value
    checks: tuple[Check, ...]
    titles: tuple[str, ...] | None  # None: the titles are not what this case is about
    hops: tuple[tuple[str, str], ...] = ()  # (colour class, hop title) drawn
    holds: tuple[str, ...] = ()  # text the picture holds
    counts: tuple[tuple[str, int], ...] = ()  # text the picture holds exactly so many times


ALERT = "watchdog reaches the alertmanager"
ALERT_HOPS = ("oke Prometheus → oke Alertmanager", "workstation Prometheus → oke Alertmanager")
APP_UP, APP_REMOTE = "app target is up", "app series reach the primary"
APP_FAILURE = "workstation app → oke Prometheus (remote_write): no version{job=\"example-app\",cluster=\"workstation\"}"
CONFIGMAP = "configmap dashboard appears in its folder"
CONFIGMAP_HOP = "oke ConfigMap → Grafana sidecar → oke Grafana"  # conformance/core/hops.py configmap_dashboards
EVENT = "an event reaches the primary loki"
EVENT_HOPS = ("oke event exporter → oke Loki", "workstation event exporter → oke Loki")  # conformance/core/hops.py "events"
KSM = "the canary pod is described on the primary"
KSM_HOPS = ("oke kube-state-metrics → oke Prometheus", "workstation kube-state-metrics → oke Prometheus")
KUBEBENCH = "every group was pushed within the interval"
KUBEBENCH_HOPS = ("oke kube-bench → oke Pushgateway → oke Prometheus",
                  "workstation kube-bench → workstation Pushgateway → oke Prometheus")
TRACE = "forced trace from the remote is one trace from both clusters"


def configmap_case(outcome: str, drawn: str) -> WithPart:
    """The configmap-dashboards hop drawn in the colour of its one check."""
    return WithPart("configmap_dashboards", ("part.configmap-dashboards", "on"),
                    (check("configmap_dashboards", CONFIGMAP, "oke", outcome,
                           f"{CONFIGMAP_HOP}: dashboard conformance-1 is in folder 'General'"),),
                    (CONFIGMAP_HOP,), ((drawn, CONFIGMAP_HOP),), holds=(">ConfigMap</text>",))


def kubebench_case(failing: str) -> WithPart:
    """Each cluster has its kube-bench hop; the failing cluster's failure colours its own."""
    passing = "workstation" if failing == "oke" else "oke"
    return WithPart("kube_bench", ("part.kube-bench", "interval=1h"),
                    (check("kube_bench", KUBEBENCH, passing, "passed"),
                     check("kube_bench", KUBEBENCH, failing, "failed",
                           f"{failing} kube-bench → {failing} Pushgateway → oke Prometheus: stale")),
                    KUBEBENCH_HOPS,
                    (("failed", f"{failing} kube-bench → {failing} Pushgateway → oke Prometheus"),
                     ("passed", f"{passing} kube-bench → {passing} Pushgateway → oke Prometheus")),
                    # the primary's box grows by a row for its kube-bench and Pushgateway
                    holds=('height="510"',),
                    counts=((">Pushgateway</text>", 2), (">kube-bench</text>", 2)))


WITH_PART = [
    pytest.param(WithPart(
        "alerting", ("part.alerting", "remote_alerts=primary"),
        (check("alerting", ALERT, "oke", "passed"),
         check("alerting", ALERT, "workstation", "timed_out", "workstation Prometheus → oke Alertmanager: no Watchdog")),
        ALERT_HOPS, (("passed", ALERT_HOPS[0]), ("failed", ALERT_HOPS[1])), holds=(">Alertmanager</text>",)),
        id="alerting: every sender has its hop and a failure colours its own"),
    pytest.param(WithPart("alerting", ("part.alerting", "remote_alerts=none"), (), ALERT_HOPS[:1]),
                 id="alerting: a remote that sends nowhere draws no hop"),
    pytest.param(WithPart(
        "app_metrics", ("part.app-metrics", "on"),
        (check("app_metrics", APP_UP, "oke", "passed"), check("app_metrics", APP_REMOTE, "oke", "passed"),
         check("app_metrics", APP_UP, "workstation", "passed"),
         check("app_metrics", APP_REMOTE, "workstation", "timed_out", APP_FAILURE)),
        ("oke app → oke Prometheus", "workstation app → workstation Prometheus",
         "workstation app → oke Prometheus (remote_write)"),
        (("passed", "oke app → oke Prometheus"), ("failed", "workstation app → oke Prometheus (remote_write)"),
         # The remote's scrape hop is judged by its own checks, not by the failure naming the other hop.
         ("passed", "workstation app → workstation Prometheus")),
        counts=((">app</text>", 2),)),
        id="app_metrics: each cluster scrapes its app and a remote_write failure colours its own hop"),
    *(pytest.param(configmap_case(outcome, drawn), id=f"configmap_dashboards: {outcome} is drawn {drawn}")
      for outcome, drawn in [("passed", "passed"), ("failed", "failed"), ("timed_out", "failed")]),
    pytest.param(WithPart(
        "events", ("part.events", "on"),
        (check("events", EVENT, "oke", "passed"),
         check("events", EVENT, "workstation", "timed_out",
               "workstation event exporter → oke Loki: the event not in Loki")),
        EVENT_HOPS, (("passed", EVENT_HOPS[0]), ("failed", EVENT_HOPS[1])), counts=((">event exporter</text>", 2),)),
        id="events: each cluster has its hop and a failure colours its own"),
    pytest.param(WithPart(
        "kube_state_metrics", ("part.kube-state-metrics", "on"),
        (check("kube_state_metrics", KSM, "oke", "passed"),
         check("kube_state_metrics", KSM, "workstation", "timed_out",
               "workstation kube-state-metrics → oke Prometheus: the canary "
               "pod conformance-canary-state/state-canary-1 not described")),
        KSM_HOPS, (("passed", KSM_HOPS[0]), ("failed", KSM_HOPS[1])),
        counts=((">kube-state-metrics</text>", 2),)),  # a node in each cluster's box
        id="kube_state_metrics: every cluster has its hop and a failure colours its own"),
    *(pytest.param(kubebench_case(failing), id=f"kube_bench: {failing} fails and colours its own hop")
      for failing in ["oke", "workstation"]),
    pytest.param(WithPart(
        "tracing", ("part.tracing", "on"),
        (check("tracing", TRACE, "oke", "passed"),
         check("tracing", TRACE, "workstation", "timed_out", "workstation sidecars → oke Jaeger: no single trace")),
        ("oke sidecars → oke Jaeger", "workstation sidecars → oke Jaeger", "oke Kiali → oke Jaeger"),
        (("passed", "oke sidecars → oke Jaeger"), ("failed", "workstation sidecars → oke Jaeger"),
         ("passed", "oke Kiali → oke Jaeger")),
        holds=(">Jaeger</text>",)),
        id="tracing: each cluster's sidecars and kiali have their hop and a failure colours its own"),
    pytest.param(WithPart(
        "tracing", ("part.tracing", "on"),
        (check("tracing", TRACE, "workstation", "timed_out", "oke sidecars → oke Jaeger: no sidecar's span"),), None,
        (("failed", "oke sidecars → oke Jaeger"), ("unchecked", "workstation sidecars → oke Jaeger"))),
        id="tracing: a failure naming the primary's sidecars colours that hop, not the remote's"),
]


@pytest.mark.parametrize("case", WITH_PART)
def test_with_the_part_its_hops_are_drawn_in_the_colour_of_their_checks(case: WithPart):
    run = Run(checks=list(case.checks), properties={**BASE, case.part[0]: case.part[1]})
    if case.titles is not None:
        assert titles(run, case.area) == list(case.titles)
    svg = picture.render(run)
    for colour, hop in case.hops:
        assert f'<g class="hop {colour}" data-hop="{hop}"' in svg
    for text in case.holds:
        assert text in svg
    for text, times in case.counts:
        assert svg.count(text) == times


def test_a_report_written_before_kube_bench_was_hyphenated_still_draws_and_colours_its_hops():
    """An older junit.xml says part.kubebench and area kubebench; re-rendered, it reads as kube-bench's."""
    def old(cluster: str, outcome: str, message: str = "") -> Check:
        props = {"cluster": cluster, "outcome": outcome, "requirement": "must", "area": "kubebench"}
        return check_from_properties(props, message=message, name=KUBEBENCH)

    run = Run(checks=[old("oke", "passed"),
                      old("workstation", "failed", "workstation kube-bench → workstation Pushgateway → oke Prometheus: stale")],
              properties={**BASE, "part.kubebench": "interval=1h"})
    assert titles(run, "kube_bench") == list(KUBEBENCH_HOPS)
    svg = picture.render(run)
    assert '<g class="hop failed" data-hop="workstation kube-bench → workstation Pushgateway → oke Prometheus"' in svg


def test_events_checks_sort_after_the_default_areas():
    assert AREAS.index("events") > AREAS.index("platform")
