"""platform: every scrape job the stack must have is up, every pod of the stack is Ready, and (should) the stack runs
the pinned versions."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest

from conformance.core.access import service_title
from conformance.core import timing
from conformance.probes.metrics.remote_write.config import scrape_interval_of
from conformance.core.eventually import NotYet, eventually
from conformance.probes.inventory import drift_failure
from conformance.probes.mesh.monitors import mesh_monitor, role_rules
from conformance.probes.metrics.monitor_selection import require_selected
from conformance.core.outcomes import Failed, PreconditionUnmet, Unobservable
from conformance.core.pods import CrashLoopJudge, pod_problems
from conformance.core.versions import load_versions
from conformance.plugins.suite import INVENTORY
from conformance.core.redact import redact
from conformance.probes.platform.pod_logs import last_logs
from conformance.probes.platform.targets import describe_target, owner, scraped_at
from conformance.probes.platform.stack_jobs import expected_jobs

pytestmark = pytest.mark.platform

# Pods of a freshly installed stack settle within a couple of minutes (image pulls included).
PODS_WAIT = timing.pods_settled()
NOT_CONFIGURED = ("their monitors are not selected by this Prometheus (serviceMonitorSelector / namespace selector of "
                  "the Prometheus resource; see docs/troubleshooting.md#monitor-not-selected-by-the-prometheus) "
                  "or the chart does not render them with these values")
NOT_RENDERED = ("the Prometheus resource selects their monitors, yet the operator rendered no scrape pool: it skips a monitor "
                "it cannot use (the operator's log names it and why) or has not reloaded this Prometheus yet")


# The control-plane jobs kind's kubeadm binds on 127.0.0.1 unless kind/*.yaml binds them on 0.0.0.0.
LOOPBACK_BOUND = {"kube-controller-manager", "kube-scheduler", "kube-etcd", "kube-proxy"}


@pytest.mark.requirement("must")
def test_every_prometheus_target_is_up(cluster, prometheus, access, record_property):
    """Every job the stack must have on this cluster is scraped and up; other down targets are reported only."""
    expectation = expected_jobs(access, cluster, prometheus)
    required = expectation.jobs
    hop = f"{service_title(cluster, 'prometheus')} → its scrape targets"
    record_property("required_jobs", ",".join(j.job for j in required))
    record_property("required_jobs_from", expectation.source)
    if not required:  # nothing to judge is not a pass
        raise PreconditionUnmet(hop, f"{prometheus.name} is configured to scrape nothing: no job is required "
                                     f"(required jobs from {expectation.source})")
    for rule in role_rules(cluster.role):  # the mesh monitors the cluster has, against the Prometheus's selectors
        if not (m := mesh_monitor(access, cluster, rule)).how.startswith("bring-up name;"):
            require_selected(access, cluster, m.kind, m.namespace, m.name, hop, record_property)
    started = time.time()
    # A down target gets one fresh scrape before it counts as down, at the interval the cluster's Prometheus loaded.
    wait = timing.scraped(scrape_interval_of(prometheus))
    jobs = prometheus.configured_jobs()  # None: some are in scrape_config_files, and the wait says what is missing
    unconfigured = [j for j in required if jobs is not None and not any(job.startswith(j.pool_prefix) for job in jobs)]
    if unconfigured:  # the operator renders a pool for every monitor it selects: none means none selected
        raise PreconditionUnmet(hop, f"the configuration {prometheus.name} loaded has no scrape pool for "
                                     f"{', '.join(f'{j.job} ({j.monitor})' for j in unconfigured)}: "
                                     f"{NOT_CONFIGURED if expectation.project else NOT_RENDERED}",
                                "\n".join([f"required jobs from {expectation.source}"]
                                          + [f"{j.job}: required by {j.source}" for j in unconfigured]))

    def probe():
        targets = prometheus.active_targets()
        missing = [j for j in required if not any(j.owns(t) for t in targets)]
        if missing:  # the operator may not have reloaded the configuration yet
            raise NotYet("no targets yet for required jobs " + ", ".join(f"{j.job} ({j.monitor})" for j in missing))
        not_up = [t for t in targets if t.get("health") != "up"]
        # Only a scrape that happened after the check started proves a target down now.
        stale = [t for t in not_up if scraped_at(t) < started]
        if stale:
            raise NotYet(f"{len(stale)} targets not freshly scraped yet: " + "; ".join(describe_target(t) for t in stale[:5]))
        return targets, not_up

    targets, not_up = eventually(probe, hop=hop, what="required jobs not all scraped", wait=wait,
                                 diagnose=lambda: "their monitor is not selected by this Prometheus or its Service has "
                                                  f"no endpoints (required jobs from {expectation.source})")
    down = [t for t in not_up if owner(t, required)]
    others = [t for t in not_up if not owner(t, required)]
    record_property("targets", len(targets))
    record_property("targets_down", len(down))
    record_property("other_targets_down", len(others))
    if others:  # a user's own monitors: reported with their errors, never turning the stack red
        listing = "; ".join(describe_target(t) for t in others)
        record_property("other_targets_down_detail", redact(listing))
        warnings.warn(f"{hop}: {len(others)} targets outside the stack's jobs are down: {redact(listing)}", stacklevel=1)
    if down:
        jobs = sorted({owner(t, required).job for t in down})
        hints = [f"{job} listens on 127.0.0.1 on kind unless kind/*.yaml binds it on 0.0.0.0 (kubeadmConfigPatches)"
                 for job in jobs if job in LOOPBACK_BOUND]
        raise Failed(hop, f"{len(down)} of {len(targets)} targets of required jobs down (jobs: {', '.join(jobs)})",
                     "\n".join([describe_target(t) for t in down] + hints
                               + [f"required jobs from {expectation.source}"]))


@pytest.mark.requirement("must")
def test_every_stack_pod_is_ready(cluster, access, record_property):
    """Every pod in the stack's namespaces is Ready; a crash loop that persists fails with its previous log lines."""
    kube = access.kube(cluster)
    core = kube.core()
    namespaces = access.stack_namespaces(cluster)
    hop = f"{cluster.name} stack pods"
    judge = CrashLoopJudge(PODS_WAIT.scaled())  # a loop while dependencies start may heal

    def probe():
        pods = []
        for ns in namespaces:
            pods += kube.call(f"list pods in {ns}", core.list_namespaced_pod, ns).items
        problems = [p for pod in pods for p in pod_problems(pod)]
        fatal = [(p, "") if p.unrecoverable else (p, judge.persistent(p)) for p in problems
                 if p.unrecoverable or (p.crash_looping and judge.persistent(p))]
        if fatal:
            evidence = "\n\n".join(f"{p}\n{last_logs(kube, core, p)}" for p, _ in fatal[:3])
            first, why = fatal[0]
            raise Failed(hop, f"{first}" + (f" [{why}]" if why else "")
                         + (f" (and {len(fatal) - 1} more)" if len(fatal) > 1 else ""), evidence)
        if problems:
            raise NotYet("; ".join(str(p) for p in problems[:5]))
        return pods

    pods = eventually(probe, hop=hop, what="pods not Ready", wait=PODS_WAIT)
    record_property("pods_ready", len(pods))


@pytest.mark.requirement("should")
def test_the_stack_runs_the_pinned_versions(cluster, topology, pytestconfig, record_property):
    """Each service the run's inventory found on this cluster reports the version stack/versions.yaml pins (the
    versions this suite was proven at): a drift is reported, and fails the run only under --strict."""
    if INVENTORY not in pytestconfig.stash:
        raise Unobservable("not run: no stack inventory was taken in this run")
    versions = load_versions(Path(pytestconfig.getoption("pins")))
    entries = pytestconfig.stash[INVENTORY]
    record_property("pins_file", str(versions.path))
    failure = drift_failure(cluster.name, entries, versions, topology.profile)
    if failure is not None:
        raise failure
