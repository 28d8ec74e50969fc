"""upgrade: what was there before an upgrade is still there after it (run by `nox -s upgrade`).

Each check runs twice: before the upgrade it records what it wrote or saw, after
the upgrade it asserts that thing is still queryable. Outside an upgrade they are
deselected (conformance/plugins/suite.py).
"""

from __future__ import annotations

import time

import pytest

from conformance.probes.logs.canary import new_tag
from conformance.probes.logs.loki_store import cluster_values
from conformance.probes.metrics.series_label import series_label
from conformance.core import timing
from conformance.core.eventually import NotYet, eventually
from conformance.core.hops import hop as hop_name
from conformance.core.outcomes import Failed, NotApplicable, PreconditionUnmet

pytestmark = pytest.mark.upgrade

VISIBLE = timing.log_delivered()  # a line written after the upgrade
PRESENT = timing.restarted()  # components restart during an upgrade


@pytest.mark.logs
@pytest.mark.writes
@pytest.mark.requirement("must")
def test_log_line_from_before_the_upgrade_is_still_queryable(cluster, primary, loki, upgrade, request, record_property):
    """A canary line written before the upgrade is found in the primary Loki after it."""
    key = f"log-line/{cluster.name}"
    hop = f"{primary.name} Loki storage across the upgrade ({cluster.name} logs)"
    if upgrade.phase == "before":
        line = request.getfixturevalue("emitter").emit(new_tag(cluster.name))  # only this phase writes
        query = f'{{cluster="{cluster.name}"}} |= "{line.tag}"'

        def visible():
            if not loki.streams(query, start=line.emitted_at - 300, end=time.time() + 60, limit=1):
                raise NotYet(f"no line matching {query}")
        eventually(visible, hop=hop, what="the line to carry across was never visible", wait=VISIBLE)
        upgrade.put(key, {"tag": line.tag, "emitted_at": line.emitted_at})
        return
    recorded = upgrade.get(key)
    if recorded is None:
        raise PreconditionUnmet(hop, f"the run before the upgrade recorded no line for {cluster.name}")
    query = f'{{cluster="{cluster.name}"}} |= "{recorded["tag"]}"'

    def present():
        if not loki.streams(query, start=recorded["emitted_at"] - 300, end=time.time() + 60, limit=1):
            raise NotYet(f"no line matching {query}")
    eventually(present, hop=hop, what="the line written before the upgrade is gone", wait=PRESENT)
    record_property("log_line_age_seconds", round(time.time() - recorded["emitted_at"], 1))


@pytest.mark.logs
@pytest.mark.requirement("must")
def test_no_line_from_before_the_upgrade_is_shipped_twice(cluster, primary, topology, loki, upgrade, record_property):
    """The line written before the upgrade is in the primary Loki once after it, though two agents ran (a profile move)."""
    recorded = upgrade.get(f"log-line/{cluster.name}")
    if upgrade.phase == "before":
        raise NotApplicable("checked after the upgrade, on the line the run before it wrote")
    hop = hop_name("logs", cluster, primary, topology.stack_profile.agent)
    if recorded is None:
        raise PreconditionUnmet(hop, f"the run before the upgrade recorded no line for {cluster.name}")
    query = f'{{cluster="{cluster.name}"}} |= "{recorded["tag"]}"'

    def copies():
        streams = loki.streams(query, start=recorded["emitted_at"] - 300, end=time.time() + 60, limit=100)
        found = [(s["stream"], v[0]) for s in streams for v in s["values"]]
        if not found:
            raise NotYet(f"no line matching {query}")
        return found

    found = eventually(copies, hop=hop, what="the line written before the upgrade is gone", wait=PRESENT)
    record_property("log_line_copies", len(found))
    if len(found) > 1:
        # A new agent that starts without the old one's read positions reads every file from the start.
        labels = "; ".join(f"{sorted(labels.items())} at {ts}" for labels, ts in found)
        raise Failed(hop, f"the line written before the upgrade is in Loki {len(found)} times: the agent after the "
                     "upgrade shipped again what the one before had shipped (its read positions were not handed over)",
                     f"copies: {labels}", final=True)


@pytest.mark.logs
@pytest.mark.requirement("must")
def test_cluster_label_values_are_unchanged_across_the_upgrade(topology, primary, loki, upgrade, record_property):
    """The primary Loki's `cluster` label values after the upgrade are the ones it had before it."""
    hop = f"every {topology.stack_profile.agent} → {primary.name} Loki across the upgrade"
    expected = set(topology.names)
    seen = eventually(lambda: cluster_values(loki, expected), hop=hop, what="cluster label values incomplete", wait=PRESENT)
    if upgrade.phase == "before":
        upgrade.put("cluster-values", sorted(seen))
        return
    before = upgrade.get("cluster-values")
    if before is None:
        raise PreconditionUnmet(hop, "the run before the upgrade recorded no cluster label values")
    record_property("loki_cluster_values", ",".join(sorted(seen)))
    if sorted(seen) != before:
        new = sorted(seen - set(before))
        raise Failed(hop, f"cluster label values changed: {before} before, {sorted(seen)} after "
                     f"(new: {', '.join(new) or 'none'}); the new agent's external_labels do not match the old one's",
                     final=True)


@pytest.mark.metrics
@pytest.mark.requirement("must")
def test_remote_series_from_before_the_upgrade_are_still_queryable(remote, primary, primary_prometheus, upgrade, access,
                                                                    record_property):
    """The primary still answers for the remote's series at a moment before the upgrade."""
    key = f"series/{remote.name}"
    label = series_label(access, remote)  # the external label the remote's Prometheus resource names it by
    record_property("cluster_label", str(label))
    query = f'count(up{{{label.name}="{remote.name}"}})'
    hop = f"{primary.name} Prometheus storage across the upgrade ({remote.name} series)"
    if upgrade.phase == "before":
        def seen():
            if not primary_prometheus.query(query):
                raise NotYet(f"{query} is empty")
            return time.time()
        upgrade.put(key, {"at": eventually(seen, hop=hop, what="no remote series to carry across", wait=VISIBLE)})
        return
    recorded = upgrade.get(key)
    if recorded is None:
        raise PreconditionUnmet(hop, f"the run before the upgrade recorded no moment for {remote.name}")
    if not primary_prometheus.query(query, time=recorded["at"]):
        raise Failed(hop, f"{query} at {time.strftime('%H:%M:%S', time.gmtime(recorded['at']))} UTC (before the upgrade) "
                     "is empty now: the primary lost its TSDB (no persistent volume?)")
    record_property("series_age_seconds", round(time.time() - recorded["at"], 1))
