"""kube-bench (optional part): each node's kube-bench totals, pushed to its cluster's Pushgateway, reach the primary."""

from __future__ import annotations

import pytest

from conformance.probes.kubebench import pushes as kb
from conformance.probes.kubebench.scrape import pushgateway_spec, scrape_target
from conformance.probes.kubebench.totals import cluster_label, groups_or_none, totals_on_primary, why_no_totals
from conformance.probes.platform.targets import require_scraped
from conformance.core.access import ServiceAbsent
from conformance.core import timing
from conformance.core.eventually import NotYet, eventually
from conformance.core.hops import hop
from conformance.core.outcomes import Failed
from conformance.probes.metrics.promql import on_primary

pytestmark = [pytest.mark.kube_bench, pytest.mark.part("kube-bench")]

SCRAPE_WAIT = timing.forwarded()
# The bring-up waits for every node's first run; the totals then take one scrape and one remote_write send.
TOTALS_WAIT = timing.forwarded()


@pytest.mark.hop("pushgateway_scrape[{cluster}]")
@pytest.mark.requirement("must")
def test_the_pushgateway_is_scraped_on_every_cluster(cluster, primary, prometheus, access, record_property):
    """The cluster's Prometheus has the Pushgateway as a target (its ServiceMonitor named as the Service found), up."""
    name = hop("kube-bench", cluster, primary)
    row = scrape_target(pushgateway_spec(access, cluster))
    record_property("pushgateway_scrape_pool", row.pool)
    up = require_scraped(prometheus, row, name, SCRAPE_WAIT)
    record_property("pushgateway_targets", len(up.found))


@pytest.mark.hop(needs=["pushgateway_scrape[{cluster}]"])  # nothing scraped there: the scrape check said why
@pytest.mark.requirement("must")
def test_the_totals_of_every_pushing_node_reach_the_primary(cluster, primary, primary_prometheus, access, record_property):
    """kube_bench_total_pass, _fail and _warn per node are on the primary with <label>=<name> and job as pushed.

    The primary's own series are stored without its external labels (conformance/probes/metrics/promql.py on_primary)."""
    name = hop("kube-bench", cluster, primary)
    label = cluster_label(access, cluster, record_property)

    def probe():
        totals = totals_on_primary(primary_prometheus, cluster, label)
        if not totals.by_node:
            match = f'{{__name__=~"kube_bench_total_.+", {on_primary(cluster, label)}}}'
            if why := kb.renamed_labels([s["metric"] for s in primary_prometheus.query(match)], kb.push_job()):
                raise Failed(name, why)
            raise NotYet(f"the {primary_prometheus.name} has no kube_bench_total_* with {on_primary(cluster, label)}, "
                         f"job={kb.push_job()}")
        if totals.incomplete():
            raise NotYet("; ".join(f"node {n} lacks {', '.join(kb.metric(r) for r in missing)}"
                                   for n, missing in totals.incomplete().items()))
        return totals

    totals = eventually(probe, hop=name, what=f"no kube-bench totals with {label}={cluster.name} on the primary",
                        wait=TOTALS_WAIT, diagnose=lambda: why_no_totals(access, cluster, primary, primary_prometheus, label))
    record_property("kube_bench_nodes", ",".join(totals.nodes_with_all()))
    for node, results in sorted(totals.by_node.items()):
        record_property(f"kube_bench_totals.{node}", " ".join(f"{r}={results[r]:g}" for r in kb.CHECKED))


@pytest.mark.hop(needs=["pushgateway_scrape[{cluster}]"])  # nothing scraped there: the scrape check said why
@pytest.mark.requirement("must")
def test_every_group_was_pushed_within_the_interval(cluster, primary, primary_prometheus, topology, access, record_property):
    """Each node's push_time_seconds on the primary is at most one interval (plus one run's allowance) old."""
    name = hop("kube-bench", cluster, primary)
    interval = topology.parts["kube-bench"].options["interval"]
    limit = kb.max_age(interval)
    label = cluster_label(access, cluster, record_property)
    selector = f'{kb.PUSH_TIME}{{{on_primary(cluster, label)}, job="{kb.push_job()}"}}'

    def probe():
        # node -> (push time, evaluation time: the primary's clock, not the runner's), labels
        found = {s["metric"].get("node", s["metric"].get("instance", "")): (float(s["value"][1]), float(s["value"][0]), s["metric"])
                 for s in primary_prometheus.query(selector)}
        if not found:
            raise NotYet(f"the {primary_prometheus.name} has no {selector}")
        return found

    found = eventually(probe, hop=name, what=f"no {kb.PUSH_TIME} of job={kb.push_job()} on the primary", wait=TOTALS_WAIT,
                       diagnose=lambda: why_no_totals(access, cluster, primary, primary_prometheus, label))
    ages = {n: at - pushed for n, (pushed, at, _) in found.items()}
    never = sorted(n for n, (pushed, _, _) in found.items() if pushed <= 0)
    record_property("kube_bench_oldest_push_age_seconds", round(max(ages.values()), 1))
    if never:
        # The Pushgateway keeps a group whose every push it refused with push_time_seconds 0 (storage/diskmetricstore.go).
        raise Failed(name, f"Pushgateway groups never pushed successfully: {', '.join(never)} "
                           f"({kb.PUSH_TIME} 0: the {cluster.name} Pushgateway refused every push to them; "
                           "the push container's log of their last Job shows its answer)")
    # A push time cannot get younger before the node's next run, one interval away: judged at once.
    old = kb.stale(ages, limit)
    if old:
        raise Failed(name, "stale Pushgateway groups: " + "; ".join(
            f"job={kb.push_job()} instance={found[n][2].get('instance', '')} node={n} pushed {kb.age_text(a)} ago"
            for n, a in old.items()) +
            f", longer than the interval {interval} plus {kb.age_text(kb.run_allowance())} for a run to start and finish "
            f"(parts.kube-bench.interval; the CronJobs kube-bench-<node> have not pushed since)",
            f"limit {limit} s; ages " + ", ".join(f"{n}: {a:.0f} s" for n, a in sorted(ages.items())))


@pytest.mark.hop(needs=["pushgateway_scrape[{cluster}]"])  # nothing scraped there: the scrape check said why
@pytest.mark.requirement("must")
def test_every_node_of_the_cluster_has_results(cluster, primary, primary_prometheus, access, record_property):
    """Every node in the API server's node list has kube-bench totals on the primary; a node without them is named."""
    name = hop("kube-bench", cluster, primary)
    try:
        kube = access.kube(cluster)
    except ServiceAbsent as e:
        raise type(e)(f"{e}: the node list comes from the API server") from None
    nodes = sorted(n.metadata.name for n in kube.call("list nodes", kube.core().list_node).items)
    record_property("cluster_nodes", ",".join(nodes))
    label = cluster_label(access, cluster, record_property)
    groups = groups_or_none(access, cluster)
    if groups is not None and (never := kb.never_pushed(nodes, groups, kb.push_job())):
        # A node's group appears only when its own run pushes: the bring-up waited for every node's first run, the
        # next is one interval away (a node that joined since has no CronJob at all), so no wait here brings it.
        raise Failed(name, kb.no_group_words(cluster.name, never) + "; a group appears only when the node's own "
                           "kube-bench run pushes, once per parts.kube-bench.interval, so waiting will not bring it "
                           "(a node that joined after the bring-up has no CronJob: bring the part up again)",
                     f"the node list: {', '.join(nodes)}; the Pushgateway's groups: "
                     + ("; ".join(" ".join(f"{k}={v}" for k, v in sorted(g.items())) for g in groups) or "none"))

    def probe():
        have = set(totals_on_primary(primary_prometheus, cluster, label).nodes_with_all())
        missing = [n for n in nodes if n not in have]
        if missing:
            raise NotYet(f"no kube-bench totals for node {', '.join(missing)} (totals for {', '.join(sorted(have)) or 'no node'})")
        return have

    def diagnose():
        groups = groups_or_none(access, cluster)
        if groups is None:
            return ""
        have = set(totals_on_primary(primary_prometheus, cluster, label).nodes_with_all())
        return kb.why_nodes_missing([n for n in nodes if n not in have], groups, cluster.name, kb.push_job())

    have = eventually(probe, hop=name, what="a node without kube-bench results", wait=TOTALS_WAIT, diagnose=diagnose)
    record_property("kube_bench_nodes_not_in_node_list", ",".join(sorted(have - set(nodes))))
