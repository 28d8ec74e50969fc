"""logs: every cluster's logs reach the primary's log store under that cluster's name.

The checks judge the pipeline, whichever agent and store the stack profile runs (topology `profile:`): Promtail or
Alloy into Loki (cluster=<name> label), or Vector into OpenSearch (the cluster field; conformance/probes/logs/opensearch.py).
Hops and diagnoses name that agent, and its own counters say why a line did not arrive. A check about the other
store is not applicable on a profile.
"""

from __future__ import annotations

import time

import pytest

from conformance.probes.logs import opensearch as opensearch_logs
from conformance.probes.logs import agent_counters as promtail
from conformance.probes.logs.canary import Follower, follow, give_up_when_hopeless, new_tag
from conformance.probes.logs.loki_store import (
    LOOKBACK, Discards, cluster_values, discards, discards_grown, streams_summary,
)
from conformance.core import timing
from conformance.core.eventually import NotYet, eventually, timeout_scale
from conformance.core.hops import every_agent, hop
from conformance.core.http import ServiceError, single_attempts
from conformance.core.outcomes import Failed, NotApplicable

pytestmark = pytest.mark.logs

# Promtail and Alloy batch for up to 1 s (batchwait / batch_wait defaults) and Loki makes a line queryable as soon as the
# ingester has it; the budget leaves room for a cold agent's back-off. The line is followed on
# Loki's tail; where that is refused, polls are at most 1 s apart.
CANARY_WAIT = timing.log_delivered()
# Loki's /ready answers at once when Loki runs, and an answer on its way is awaited (request timeout),
# so a few seconds only bound the retries of refused connections. A Loki still unreachable then is
# down, and every check that needs it stops instead of waiting its own minute.
LOKI_READY_WAIT = timing.answers()
LABEL_WAIT = timing.labels_listed()
DISCARD_WINDOW = 5.0  # seconds of Loki's discard counters the check watches at least, from the first canary on


@pytest.fixture(scope="session")
def logs_in_loki(topology) -> None:
    """The Loki checks judge the Loki profiles only."""
    if opensearch_logs.in_opensearch(topology.stack_profile.name):
        raise NotApplicable(f"the stack profile {topology.stack_profile.name} keeps logs in OpenSearch, not Loki")


@pytest.fixture(scope="session")
def logs_in_opensearch(topology) -> None:
    """The OpenSearch checks judge the vector-opensearch profile only."""
    if not opensearch_logs.in_opensearch(topology.stack_profile.name):
        raise NotApplicable(f"the stack profile {topology.stack_profile.name} keeps logs in Loki, not OpenSearch")


@pytest.fixture(scope="session")
def discards_at_start(logs_in_loki, loki) -> Discards | None:
    """Loki's discarded-sample counters when the logs checks began (None: not reachable)."""
    try:
        with single_attempts():  # a baseline, best effort: an unreachable Loki is the readiness check's verdict
            counts = discards(loki)
            return None if counts is None else Discards(counts, time.monotonic())
    except ServiceError as e:
        if e.transient:  # unreachable, or 503 while Loki has no ready pod: the readiness check and the waits say so
            return None
        raise


@pytest.mark.usefixtures("logs_in_loki")
@pytest.mark.hop("loki[{primary}]")
@pytest.mark.requirement("must")
def test_primary_loki_is_ready(primary, loki):
    """The primary Loki answers ready; unreachable, it is down and the logs checks stop at once."""
    def probe():
        ready, body = loki.ready()
        if not ready:
            raise NotYet(f"GET /ready answered 503: {body or '(empty body)'}")

    eventually(probe, hop=f"conformance → {primary.name} Loki", what="Loki not ready", wait=LOKI_READY_WAIT,
               unreachable_is_final=True)


@pytest.mark.usefixtures("logs_in_loki")
@pytest.mark.writes
@pytest.mark.hop("logs[{cluster}]", needs=["loki[{primary}]"])
@pytest.mark.requirement("must")
def test_log_canary_reaches_the_primary_loki(cluster, primary, topology, loki, access, emitter, discards_at_start,
                                             record_property):
    """A uniquely tagged line emitted in the cluster shows up in the primary Loki under cluster=<cluster>."""
    tag = new_tag(cluster.name)
    name = hop("logs", cluster, primary, topology.stack_profile.agent)
    agent = promtail.watch(access, cluster)  # the agent's counters before the line: the timeout says what they did

    def why_not(line) -> str:
        clauses = [agent.cause(line.source)] if agent else []
        grown = discards_grown(loki, discards_at_start)
        if grown:
            clauses.append(f"Loki discarded samples ({grown})")
        return "; ".join(clauses + [streams_summary(loki, cluster.name, time.time())])

    def hopeless() -> str | None:
        """The agent's counters show it cannot deliver (with what Loki says of the pushes it rejects), or None."""
        why = agent.hopeless() if agent else None
        grown = discards_grown(loki, discards_at_start) if why else ""
        return f"{why}; Loki discarded samples ({grown})" if grown else why

    with Follower(loki, tag, emitter.broad_selector(), f'{{cluster="{cluster.name}"}} |= "{tag}"', LOOKBACK) as follower:
        line = emitter.emit(tag)
        seen = follow(follower, line, hop=name, what="no canary line", wait=CANARY_WAIT, diagnose=lambda: why_not(line),
                      hopeless=hopeless)
    record_property("log_canary_follow", seen.via)  # tail: Loki's websocket; poll: the tail was refused or ended
    if follower.tail_error:
        record_property("log_canary_tail", follower.tail_error)
    if seen.labels.get("cluster") != cluster.name:
        carried = f"cluster={seen.labels['cluster']}" if "cluster" in seen.labels else "no cluster label"
        # The agent's labels are its configuration: no later line can arrive differently.
        raise Failed(name, f"the canary line arrived with {carried}, not cluster={cluster.name}",
                     f"its labels: {seen.labels}\nline: {line.text}", final=True)
    # Loki 2.9.3 gives no receive time of its own (a tail entry is [timestamp, line]): the arrival here is it.
    record_property("log_propagation_seconds", round(max(0.0, seen.seen_at - line.emitted_at), 3))
    record_property("log_canary_seen_at", f"{seen.seen_at:.3f}")  # wall clock, to line up with other records


@pytest.mark.usefixtures("logs_in_loki")
@pytest.mark.hop(needs=["loki[{primary}]", "logs[{each}]"])
@pytest.mark.requirement("must")
def test_loki_cluster_label_lists_every_cluster(topology, primary, loki, record_property):
    """The primary Loki's `cluster` label values include every cluster of the topology."""
    expected = set(topology.names)

    def missing_hops() -> str:
        values = set(loki.label_values("cluster"))
        return "missing: " + ", ".join(hop("logs", topology.cluster(n), primary, agent) for n in sorted(expected - values))

    agent = topology.stack_profile.agent
    values = eventually(lambda: cluster_values(loki, expected), hop=every_agent(primary, agent),
                        what="cluster label values incomplete", wait=LABEL_WAIT, diagnose=missing_hops)
    record_property("loki_cluster_values", ",".join(sorted(values)))


@pytest.mark.usefixtures("logs_in_loki")
@pytest.mark.hop(needs=["loki[{primary}]"])
@pytest.mark.requirement("should")
def test_loki_discards_nothing(primary, topology, loki, discards_at_start, record_property):
    """Loki's discarded-sample counters do not grow while the checks run."""
    if discards_at_start is None:
        pytest.skip(f"Loki's own metrics (/metrics) are not reachable on {primary.name}")
    watched = time.monotonic() - discards_at_start.at  # the canaries ran inside the window already
    time.sleep(max(0.0, DISCARD_WINDOW * timeout_scale() - watched))  # stretches like the waits
    now = discards(loki) or {}
    start = discards_at_start.by_reason
    grown = {reason: now[reason] - start.get(reason, 0.0) for reason in now if now[reason] > start.get(reason, 0.0)}
    record_property("loki_discarded_samples", int(sum(grown.values())))
    if grown:
        reasons = ", ".join(f"{reason}: {count:.0f}" for reason, count in sorted(grown.items()))
        raise Failed(every_agent(primary, topology.stack_profile.agent), f"Loki discarded samples during the run ({reasons})",
                     "too_far_behind/out_of_order (clock or a missing cluster label: see "
                     "docs/troubleshooting.md#out-of-order-or-too-far-behind), rate_limited (ingestion limits: see "
                     "docs/troubleshooting.md#loki-answers-429-rate-limits), greater_than_max_sample_age (old files "
                     "re-read: see docs/troubleshooting.md#timestamp-too-old)")


# -- the vector-opensearch profile: Vector into OpenSearch ----------------------------------------------------------
# Vector's sink flushes a batch after 1 s (RealtimeSizeBasedDefaultBatchSettings) and the canary's search sees a
# document once OpenSearch refreshes the index (index.refresh_interval 1 s by default): polls at most 1 s apart.
OPENSEARCH_WAIT = timing.answers()  # as LOKI_READY_WAIT: refused connections only


@pytest.mark.usefixtures("logs_in_opensearch")
@pytest.mark.hop("opensearch[{primary}]")
@pytest.mark.requirement("must")
def test_primary_opensearch_is_healthy(primary, opensearch, record_property):
    """The primary's OpenSearch answers its cluster health green, or yellow on its single data node (its replicas
    have nowhere to go: expected, and said so); red fails. Unreachable, it is down and the logs checks stop at once."""
    name = f"conformance → {primary.name} OpenSearch"
    health = eventually(opensearch.health, hop=name, what="OpenSearch health", wait=OPENSEARCH_WAIT,
                        unreachable_is_final=True)
    record_property("opensearch_health", health.status)
    record_property("opensearch_health_says", health.says())
    if not health.acceptable:
        raise Failed(name, f"cluster health is {health.says()}", final=health.status == "red")


@pytest.mark.usefixtures("logs_in_opensearch")
@pytest.mark.writes
@pytest.mark.hop("oslogs[{cluster}]", needs=["opensearch[{primary}]"])
@pytest.mark.requirement("must")
def test_log_canary_reaches_the_primary_opensearch(cluster, primary, topology, opensearch, access, emitter,
                                                   record_property):
    """A uniquely tagged line emitted in the cluster is found in the primary's OpenSearch (logs-*) with its cluster
    field naming the cluster."""
    tag = new_tag(cluster.name)
    agent_name = topology.stack_profile.agent
    name = opensearch_logs.opensearch_hop(cluster, primary, agent_name)
    agent = opensearch_logs.watch(access, cluster, opensearch.http.base_url)

    def hopeless() -> str | None:
        why = agent.hopeless() if agent else None
        if why and "rejects" in why:
            said = opensearch_logs.refusal(opensearch, cluster.name, agent.whole_requests_refused())
            return f"{why}; {said}" if said else why
        return why

    def why_not() -> str:
        clauses = [agent.cause(line.source)] if agent else []
        said = (opensearch_logs.refusal(opensearch, cluster.name, agent.whole_requests_refused())
                if agent and "rejects" in clauses[0] else "")
        return "; ".join(clauses + ([said] if said else []))

    def probe() -> opensearch_logs.Found:
        try:
            return opensearch_logs.find(opensearch, tag, cluster.name)
        except NotYet:
            wrong = opensearch_logs.arrived_elsewhere(opensearch, tag, cluster.name)
            if wrong:  # the transform's configuration: no later line can arrive differently
                raise Failed(name, wrong, f"line: {line.text}", final=True) from None
            raise

    line = emitter.emit(tag)
    found = eventually(give_up_when_hopeless(probe, hop=name, what="no canary line", hopeless=hopeless), hop=name,
                       what="no canary line", wait=CANARY_WAIT, diagnose=why_not)
    record_property("log_canary_index", found.index)
    record_property("log_propagation_seconds", round(max(0.0, found.seen_at - line.emitted_at), 3))
    record_property("log_canary_seen_at", f"{found.seen_at:.3f}")


@pytest.mark.usefixtures("logs_in_opensearch")
@pytest.mark.hop(needs=["opensearch[{primary}]", "oslogs[{each}]"])
@pytest.mark.requirement("must")
def test_opensearch_cluster_field_lists_every_cluster(topology, primary, opensearch, record_property):
    """The cluster field's values over logs-* (a terms aggregation) include every cluster of the topology."""
    expected = set(topology.names)
    agent = topology.stack_profile.agent

    def probe():
        values = opensearch_logs.cluster_values(opensearch)
        if not expected <= values:
            raise NotYet(f"cluster field values {sorted(values)}")
        return values

    def missing_hops() -> str:
        values = opensearch_logs.cluster_values(opensearch)
        return "missing: " + ", ".join(opensearch_logs.opensearch_hop(topology.cluster(n), primary, agent)
                                       for n in sorted(expected - values))

    values = eventually(probe, hop=f"every {agent} → {primary.name} OpenSearch", what="cluster field values incomplete",
                        wait=LABEL_WAIT, diagnose=missing_hops)
    record_property("opensearch_cluster_values", ",".join(sorted(values)))


@pytest.mark.usefixtures("logs_in_opensearch")
@pytest.mark.hop("dashboards[{primary}]")
@pytest.mark.requirement("should")
def test_opensearch_dashboards_has_the_logs_index_pattern(primary, opensearch_dashboards, record_property):
    """OpenSearch Dashboards answers /api/status green and has the index pattern people search the logs with."""
    name = f"conformance → {primary.name} OpenSearch Dashboards"
    status = eventually(lambda: opensearch_logs.dashboards_status(opensearch_dashboards), hop=name,
                        what="Dashboards status", wait=OPENSEARCH_WAIT, unreachable_is_final=True)
    record_property("dashboards_state", status.state)
    if status.state != "green":
        raise Failed(name, f"/api/status says overall state {status.state or '(none)'}, not green")
    pattern = opensearch_logs.setting("index_pattern", opensearch_logs.INDEX_PATTERN)
    titles = opensearch_logs.index_patterns(opensearch_dashboards)
    if pattern not in titles:
        raise Failed(name, f"no index pattern {pattern} (index patterns: {', '.join(titles) or 'none'})",
                     "Create it in Dashboards (Stack Management → Index patterns) or with the saved objects API.")
