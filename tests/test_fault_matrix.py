"""The fault matrix (issue 10, item 5): one broken hop of the mesh, Kiali and dashboards areas at a time.

Each row breaks one hop of the proving ground (the real Prometheus pair scraping fake Envoys and istiod
under the operator's pool names; Loki, Promtail, Grafana and Kiali fakes; the endpoints provider), runs
the whole `-m "mesh or kiali or dashboards"` run in a child pytest, and asserts each named check's
outcome kind, that its headline names the hop, and the time to the whole run's verdict.

The ground and the Fault knobs are shared with benchmarks/bench.py, which adds the logs/metrics rows
of the issue's table (the same knobs) and runs every row at the real timeouts.
"""

from __future__ import annotations

import re
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

import pytest

from conformance.core.manifests import ENVOY_POOL, ISTIOD_POOL
from conformance.probes.dashboards.provisioning import PROVISION_WAIT
from tests import web
from tests.fakes.envoy import FakeEnvoy, FakeIstiod, request_series
from tests.fakes.grafana import FakeGrafana
from tests.proving_ground import FAST, PrometheusPair, PrometheusProcess, Timing, free_port, start_prometheus
from tests.proving_stack import (GRAFANA_PASSWORD, GRAFANA_PASSWORD_ENV, ProvingStack, declared_dashboards,
                                 start_stack)
from tests.suite_runner import SuiteRun, run_suites

AREAS = "mesh or kiali or dashboards"
# The healthy run of AREAS on a quiet machine takes ~8 s (Python start-up, collection, the Grafana panel
# queries); a loaded CI machine (2 cores, other runs beside) needs up to twice that.
RUN_SECONDS = 20.0

SCRAPED = "mesh::envoy sidecars are scraped[{}]"
ON_PRIMARY = "mesh::envoy series are queryable on the primary[{}]"
ISTIOD = "mesh::istiod is scraped with its metrics"
CROSS = "mesh::mesh requests cross from the remote to the primary[workstation]"
KIALI_LISTED = "kiali::kiali lists every cluster accessible with the primary as home[{}]"
KIALI_NAMESPACES = "kiali::kiali lists namespaces of the cluster[{}]"
KIALI_WORKLOADS = "kiali::kiali lists the remote workloads[workstation]"
DATASOURCE = "dashboards::datasource is healthy[{}]"
PROVISIONED = "dashboards::every expected dashboard is provisioned in its folder"
GRAFANA_LOG = "dashboards::grafana log shows no provisioning errors"
PANELS = "dashboards::every panel query returns data"

CROSSING = request_series("source", "workstation", "oke")  # the remote client's sidecar
SERVED = request_series("destination", "workstation", "oke")  # the primary server's sidecar


@dataclass
class Fault:
    """One broken hop: the knobs that break it on the proving ground, and what the run must say.

    The logs/metrics knobs (receiver ... loki_down) are those of tests/test_verdicts.py's table.
    """

    name: str
    markers: str = AREAS
    unscraped: dict[str, tuple[str, ...]] = field(default_factory=dict)  # cluster -> scrape pools its Prometheus lacks
    receiver: bool = True  # the primary's remote-write receiver
    refused_remote_write: bool = False  # the remote writes to a port where nothing listens
    promtail_labels: dict[str, dict[str, str]] | None = None
    promtail_urls: dict[str, str] | None = None  # cluster -> push URL ("closed": a port where nothing listens)
    loki_down: bool = False
    profile: str = "promtail"  # the stack profile whose log agents and Loki run (tests/proving_stack.py PROFILES)
    dashboards: Callable[[list[dict]], list[dict]] | None = None  # edits Grafana's dashboard specs
    breaks: Callable[[ProvingStack], None] | None = None  # breaks the running stack before the run
    expect: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # case -> (outcome, [in the headline, elsewhere...])
    waits: float = 0.0  # seconds of check timeouts the run must sit out (at timeout scale 1)
    timeout_scale: float = 1.0  # the self-test's --timeout-scale (the benchmark runs at 1)

    def bound(self, scale: float | None = None) -> float:
        """The time the whole run may take: the waits it must sit out, plus a healthy run."""
        return self.waits * (self.timeout_scale if scale is None else scale) + RUN_SECONDS


def kiali_hidden(stack: ProvingStack) -> None:
    stack.kiali.hidden.add("workstation")


def kiali_inaccessible(stack: ProvingStack) -> None:
    stack.kiali.inaccessible.add("workstation")


def grafana_prometheus_unreachable(stack: ProvingStack) -> None:
    """Grafana restarted with its Prometheus datasource at a port where nothing listens (a wrong URL in the values).

    start_stack has no switch for a datasource's URL, so the ground's Grafana is replaced by one that differs only there.
    """
    stack.grafana.stop()
    stack.grafana = FakeGrafana(
        admin_password=GRAFANA_PASSWORD, log_path=stack.grafana_log, dashboards=declared_dashboards(),
        datasources=[{"uid": "prometheus", "name": "Prometheus", "type": "prometheus",
                      "url": f"http://127.0.0.1:{free_port()}", "isDefault": True},
                     {"uid": "loki", "name": "Loki", "type": "loki", "url": stack.loki.url}]).start()


def first_dashboard_wrapped(specs: list[dict]) -> list[dict]:
    """The first dashboard's file wraps its JSON in {"dashboard": ...}: Grafana rejects it (docs/troubleshooting.md#dashboard-title-cannot-be-empty)."""
    specs[0]["wrapped"] = True
    return specs


FIRST_DASHBOARD = declared_dashboards()[0]["file"]
MESH = next(s for s in declared_dashboards() if s["file"] == "istio-mesh.json")
MESH_FILE = "/var/lib/grafana/dashboards/istio/istio-mesh.json"


def mesh_missing(specs: list[dict]) -> list[dict]:
    """The mesh dashboard's download failed and its file is not there (docs/troubleshooting.md#dashboard-download-fails)."""
    return [s for s in specs if s["file"] != "istio-mesh.json"]


def mesh_not_json(specs: list[dict]) -> list[dict]:
    """The mesh dashboard's file is an HTML error page the download saved: Grafana's JSON decoder rejects it."""
    next(s for s in specs if s["file"] == "istio-mesh.json")["invalid_json"] = "invalid character '<' looking for beginning of value"
    return specs


def mesh_uid_twice(specs: list[dict]) -> list[dict]:
    """A second file in another provider has the mesh dashboard's uid (docs/troubleshooting.md#duplicate-dashboard-uid)."""
    return specs + [{**MESH, "provider": "logs", "folder": "Logs", "file": "copy.json"}]


FAULTS = [
    # The remote's Prometheus has no Envoy pool (the PodMonitor lacks release: kube-prometheus-stack): the
    # configuration it loaded (/api/v1/scrape_pools) has no such pool, which no wait changes (the operator renders a
    # pool for every monitor it selects), so the check says so at the first attempt; the checks that need the
    # remote's Envoys then stop at once instead of waiting 90 s and 120 s more for series from an unscraped pool.
    Fault("Envoy PodMonitor not selected on the remote", unscraped={"workstation": (ENVOY_POOL,)}, expect={
              SCRAPED.format("workstation"): ("precondition", [
                  f"workstation Envoy → workstation Prometheus: the configuration workstation Prometheus loaded has no "
                  f"scrape pool {ENVOY_POOL}", "carries release=kube-prometheus-stack"]),
              ON_PRIMARY.format("workstation"): ("blocked", [
                  "not run: needs workstation Envoy → workstation Prometheus: the configuration",
                  "(found by envoy sidecars are scraped[workstation])"]),
              CROSS: ("blocked", ["not run: needs workstation Envoy → workstation Prometheus: "]),
              SCRAPED.format("oke"): ("passed", []), ISTIOD: ("passed", []),
          }),
    # istiod's ServiceMonitor is not selected: as for the Envoy pool, the verdict comes at once with the cause;
    # nothing else needs istiod's pool, so the rest of the run is a healthy run's.
    Fault("istiod not scraped", unscraped={"oke": (ISTIOD_POOL,)},
          expect={
              ISTIOD: ("precondition", [f"oke istiod → oke Prometheus: the configuration oke Prometheus loaded has no "
                                        f"scrape pool {ISTIOD_POOL}", "carries release=kube-prometheus-stack"]),
              SCRAPED.format("oke"): ("passed", []), CROSS: ("passed", []),
          }),
    # No kiali.io/multiCluster secret: Kiali v2.29.0 knows only its home cluster and does not list the remote
    # (docs/troubleshooting.md#kiali-cannot-reach-the-remote-cluster). Kiali's config says so on the first call, so each remote check fails at once.
    Fault("Kiali remote secret missing", breaks=kiali_hidden, expect={
        **{case: ("failed", ["oke Kiali → workstation API server: Kiali does not list cluster workstation (it lists: oke)",
                             "kiali.io/multiCluster=true"])
           for case in (KIALI_LISTED.format("workstation"), KIALI_NAMESPACES.format("workstation"), KIALI_WORKLOADS)},
        KIALI_LISTED.format("oke"): ("passed", []),
    }),
    # Kiali lists the remote but has no usable kubeconfig for it (accessible: false): its config says so, at once.
    Fault("Kiali lists the remote inaccessible", breaks=kiali_inaccessible, expect={
        **{case: ("failed", ["oke Kiali → workstation API server: Kiali lists workstation but cannot access it"])
           for case in (KIALI_LISTED.format("workstation"), KIALI_NAMESPACES.format("workstation"), KIALI_WORKLOADS)},
        KIALI_NAMESPACES.format("oke"): ("passed", []),
    }),
    # Grafana's Prometheus datasource points where nothing listens: Grafana's own health check says so on the
    # first call. The panel queries run against Prometheus itself, so they still pass.
    Fault("Grafana datasource unreachable", breaks=grafana_prometheus_unreachable, expect={
        DATASOURCE.format("prometheus"): ("failed", [
            "oke Grafana → prometheus (Prometheus, http://127.0.0.1:", "health check says ERROR",
            "connect: connection refused"]),
        DATASOURCE.format("loki"): ("passed", []), PANELS: ("passed", []),
    }),
    # Grafana's current provisioning pass rejected a dashboard file. The provisioning check sees the rejection in
    # Grafana's log and fails at once (before the fix it waited its 90 s PROVISION_WAIT for a dashboard that the
    # pass had refused); the log check names the same error.
    Fault("a dashboard that failed to provision", dashboards=first_dashboard_wrapped, expect={
        PROVISIONED: ("failed", [f"oke Grafana provisioning: Grafana's provisioning rejected {FIRST_DASHBOARD}: "
                                 "Dashboard title cannot be empty"]),
        GRAFANA_LOG: ("failed", ["oke Grafana provisioning: 1 provisioning errors in Grafana's log, first: "
                                 "Dashboard title cannot be empty"]),
    }),
    # A declared dashboard missing, its file not JSON, its uid in two files: Grafana's log shows the completed pass, the
    # rejection or the duplicate, so the provisioning check says so at once (it waited its 90 s PROVISION_WAIT for the
    # missing one and the duplicate before issue 19), naming the dashboard and its file.
    Fault("a dashboard missing", dashboards=mesh_missing, expect={
        PROVISIONED: ("failed", [f"oke Grafana provisioning: dashboard istio-mesh (file {MESH_FILE}) is missing: "
                                 "Grafana's provisioning pass completed without it"]),
        GRAFANA_LOG: ("passed", []),
    }),
    Fault("a dashboard file not JSON", dashboards=mesh_not_json, expect={
        PROVISIONED: ("failed", ["oke Grafana provisioning: Grafana's provisioning rejected istio-mesh.json: invalid "
                                 f"character '<' looking for beginning of value (dashboard istio-mesh, file {MESH_FILE})"]),
        GRAFANA_LOG: ("failed", ["oke Grafana provisioning: 1 provisioning errors in Grafana's log, first: invalid "
                                 f"character '<' looking for beginning of value (dashboard istio-mesh, file {MESH_FILE})"]),
    }),
    Fault("a dashboard uid in two files", dashboards=mesh_uid_twice, expect={
        PROVISIONED: ("failed", [f"oke Grafana provisioning: dashboard istio-mesh (file {MESH_FILE}): its uid {MESH['uid']} "
                                 "is used by more than one file"]),
        GRAFANA_LOG: ("failed", ["oke Grafana provisioning: 1 provisioning errors in Grafana's log, first: the same UID is "
                                 f"used more than once (dashboard istio-mesh, file {MESH_FILE}"]),
    }),
    Fault("healthy", expect={case: ("passed", []) for case in (
        SCRAPED.format("oke"), SCRAPED.format("workstation"), ON_PRIMARY.format("workstation"), ISTIOD, CROSS,
        KIALI_WORKLOADS, DATASOURCE.format("prometheus"), PROVISIONED, GRAFANA_LOG)}),
]
assert PROVISION_WAIT.timeout > RUN_SECONDS  # so the dashboard row's bound proves the provisioning check did not wait


def pool_job(pool: str, url: str, path: str) -> dict:
    """A scrape job named like the operator's pool."""
    return {"job_name": pool, "metrics_path": path, "static_configs": [{"targets": [urlsplit(url).netloc]}]}


def wait_for_counter(process: PrometheusProcess, name: str, timeout: float = 60.0) -> None:
    """Block until one of a real Prometheus' own counters (summed over its series) is above zero."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = web.get(f"{process.url}/metrics", timeout=5).text
        if sum(float(v) for v in re.findall(rf"^{name}{{[^}}]*}} (\S+)$", text, re.MULTILINE)) > 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"prometheus {process.name}: {name} still 0 after {timeout} s")


@contextmanager
def proving_ground(folder: Path, fault: Fault, timing: Timing = FAST) -> Iterator[ProvingStack]:
    """The whole stack on loopback with `fault` in place before the run starts, as on a stack running a while."""
    with ExitStack() as cleanup:
        remote_envoy, primary_envoy = FakeEnvoy([CROSSING]), FakeEnvoy([SERVED])
        istiod = FakeIstiod()
        for server in (remote_envoy, primary_envoy, istiod):
            cleanup.enter_context(server)
        jobs = {"oke": [pool_job(ENVOY_POOL, primary_envoy.url, "/stats/prometheus"),
                        pool_job(ISTIOD_POOL, istiod.url, "/metrics")],
                "workstation": [pool_job(ENVOY_POOL, remote_envoy.url, "/stats/prometheus")]}
        jobs = {c: [j for j in js if j["job_name"] not in fault.unscraped.get(c, ())] for c, js in jobs.items()}
        primary = start_prometheus("primary", folder / "primary", cluster="oke", receiver=fault.receiver,
                                   scrape_jobs=jobs["oke"], timing=timing)
        cleanup.callback(primary.stop)
        url = f"http://127.0.0.1:{free_port()}/api/v1/write" if fault.refused_remote_write else f"{primary.url}/api/v1/write"
        remote = start_prometheus("remote", folder / "remote", cluster="workstation", remote_write_url=url,
                                  scrape_jobs=jobs["workstation"], timing=timing)
        cleanup.callback(remote.stop)
        pair = PrometheusPair(primary, remote)
        # The sender's counters show the fault before the run, as they would on a stack that has run a while.
        if fault.refused_remote_write:
            wait_for_counter(remote, "prometheus_remote_storage_samples_retried_total")
        elif not fault.receiver:
            wait_for_counter(remote, "prometheus_remote_storage_samples_failed_total")
        else:
            pair.wait_until_remote_arrives(jobs=len(jobs["workstation"]) + 1, timeout=max(60.0, 30 + 3 * timing.scrape_interval))
        if "metrics" in fault.markers and not fault.refused_remote_write:  # the sender judged from its past, as it would be
            remote.wait_for_own_past()
        urls = {c: (f"http://127.0.0.1:{free_port()}/loki/api/v1/push" if u == "closed" else u)
                for c, u in (fault.promtail_urls or {}).items()}
        dashboards = fault.dashboards(declared_dashboards()) if fault.dashboards else None
        stack = cleanup.enter_context(start_stack(folder, pair, promtail_labels=fault.promtail_labels,
                                                  promtail_urls=urls or None, dashboards=dashboards,
                                                  profile=fault.profile))
        if fault.breaks:
            fault.breaks(stack)
        yield stack


def run_fault(folder: Path, fault: Fault, timeout_scale: float | None = None,
              topology: Callable[[ProvingStack], Path] = ProvingStack.topology, timing: Timing = FAST,
              extra: tuple[str, ...] = ()) -> tuple[SuiteRun, ProvingStack]:
    """The whole run of fault.markers with the fault in place; the stack is stopped when this returns.

    timing: how often the ground's Prometheus scrape and send (the benchmark runs the stack's); extra: more arguments."""
    scale = fault.timeout_scale if timeout_scale is None else timeout_scale
    with proving_ground(folder, fault, timing) as stack:
        path = topology(stack)  # written while Loki still has its URL
        if fault.loki_down:
            stack.loki.stop()
        run = run_suites(folder, "--topology", str(path), "-m", fault.markers,
                         "--timeout-scale", f"{scale:g}", *extra, env={GRAFANA_PASSWORD_ENV: GRAFANA_PASSWORD}, timeout=900)
    return run, stack


def headline(failure: str) -> str:
    """The failure's first line without pytest's exception-type prefix."""
    return failure.lstrip().splitlines()[0] if failure.strip() else ""


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_each_broken_hop_gets_its_exact_verdict_in_time(tmp_path, fault, record_property):
    run, _ = run_fault(tmp_path, fault)
    record_property("verdict_seconds", round(run.suite_seconds, 1))
    for case, (outcome, parts) in fault.expect.items():
        failure = run.failure(case)
        assert run.properties(case)["outcome"] == outcome, f"{case}: {failure}\n{run.output[-3000:]}"
        if parts:  # the first part is the headline's (the hop, then the cause), the rest is anywhere in the failure
            assert parts[0] in headline(failure), f"{case}: {parts[0]!r} not in the headline of\n{failure}"
        for part in parts[1:]:
            assert part in failure, f"{case}: {part!r} not in\n{failure}"
    assert run.code == (0 if fault.name == "healthy" else 1), run.output[-3000:]
    run.assert_no_traceback()  # an environment problem is a line of words, never a Python traceback
    # The child session's own time: its interpreter start-up on a loaded machine is not the verdict's pace.
    assert run.suite_seconds < fault.bound(), f"{run.suite_seconds:.1f} s > {fault.bound():.0f} s\n{run.output[-3000:]}"


def test_a_rejected_dashboard_is_named_at_once_from_the_grafana_pods_log(tmp_path, prometheus_pair):
    """The provisioning check's fast path through the service proxy: the rejection read from the Grafana pod's log."""
    from tests.proving_kube import start_kube_stack

    stack = start_kube_stack(tmp_path / "stack", prometheus_pair, dashboards=first_dashboard_wrapped(declared_dashboards()))
    try:
        run = run_suites(stack.folder, "--topology", str(stack.topology()), "-m", "dashboards", "-k", "provisioned_in")
    finally:
        stack.stop()
    failure = run.failure(PROVISIONED)
    assert run.properties(PROVISIONED)["outcome"] == "failed", failure
    assert headline(failure).startswith(f"oke Grafana provisioning: Grafana's provisioning rejected {FIRST_DASHBOARD}: "
                                        "Dashboard title cannot be empty"), failure
    assert run.suite_seconds < RUN_SECONDS  # not the 90 s PROVISION_WAIT
