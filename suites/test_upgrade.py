"""upgrade: what was there before an upgrade is still there after it (run by `nox -s upgrade`).

Each check runs twice: before the upgrade it records what it wrote or saw, after
the upgrade it asserts that thing is still queryable. Outside an upgrade they are
deselected (conformance/pytest_plugin.py).
"""

from __future__ import annotations

import time

import pytest

from conformance.canary import new_tag
from conformance.eventually import NotYet, Wait, eventually
from conformance.outcomes import Failed, PreconditionUnmet

pytestmark = pytest.mark.upgrade

VISIBLE = Wait(timeout=60, delay=0.25, max_delay=1)
PRESENT = Wait(timeout=120, delay=1, max_delay=5)  # components restart during an upgrade


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


@pytest.mark.metrics
@pytest.mark.requirement("must")
def test_remote_series_from_before_the_upgrade_are_still_queryable(remote, primary, primary_prometheus, upgrade,
                                                                    record_property):
    """The primary still answers for the remote's series at a moment before the upgrade."""
    key = f"series/{remote.name}"
    query = f'count(up{{cluster="{remote.name}"}})'
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
