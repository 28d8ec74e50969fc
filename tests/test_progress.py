"""Red within a minute (issue 17): waits side by side, progress while waiting, the reports in reading order."""

from __future__ import annotations

import re

import pytest

from conformance.cli import MAX_WORKERS, worker_cap, workers
from conformance.reports.model import load_run
from conformance.core.topology import load_topology
from tests.suite_runner import run_suites, write_topology

SERIES = "metrics::remote series reach the primary[nowhere]"


def misnamed_remote(tmp_path, pair):
    """The remote's series arrive as cluster=workstation; the topology calls it nowhere: the check waits it out."""
    return write_topology(tmp_path, [
        {"name": "oke", "role": "primary", "provider": "endpoints", "services": {"prometheus": pair.primary.url}},
        {"name": "nowhere", "role": "remote", "provider": "endpoints", "services": {"prometheus": pair.remote.url}},
    ])


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_long_wait_reports_its_check_hop_and_last_state_while_it_waits(tmp_path, prometheus_pair, xdist):
    # SERIES_WAIT is 60 s: at 0.25 it waits 15 s, so one report comes at 10 s, before the verdict.
    run = run_suites(tmp_path, "--topology", str(misnamed_remote(tmp_path, prometheus_pair)), "-m", "metrics",
                     "-k", "reach_the_primary", "--timeout-scale", "0.25", *xdist)
    assert run.properties(SERIES)["outcome"] == "timed_out"
    lines = [line for line in run.output.splitlines() if line.startswith("… ")]
    assert lines, run.output
    assert re.match(r"… 1\d s remote series reach the primary\[nowhere\] \(nowhere Prometheus → oke Prometheus "
                    r"\(remote_write\)\): no series with cluster=nowhere yet; last seen: no up\{cluster=\"nowhere\"\} on "
                    r"the primary", lines[0]), lines
    # Live, not in a captured section after the failure: the report comes before the verdict's block.
    assert run.output.index(lines[0]) < run.output.index("conformance verdict")
    assert "Captured stdout" not in run.output


def test_the_closing_block_lists_each_checks_own_time(tmp_path, prometheus_pair):
    run = run_suites(tmp_path, "--topology", str(misnamed_remote(tmp_path, prometheus_pair)), "-m", "metrics",
                     "-k", "reach_the_primary", "--timeout-scale", "0.05")
    block = run.output.split("conformance verdict", 1)[1]
    assert re.search(r"Check times:\n +\d+\.\d s  metrics::remote series reach the primary\[nowhere\]\n", block), block


def test_side_by_side_the_reports_keep_the_order_checks_were_collected_in(tmp_path, prometheus_pair):
    topo = write_topology(tmp_path, [
        {"name": "oke", "role": "primary", "provider": "endpoints", "services": {"prometheus": prometheus_pair.primary.url}},
        {"name": "workstation", "role": "remote", "provider": "endpoints", "services": {"prometheus": prometheus_pair.remote.url}},
    ])
    runs = {}
    for name, args in (("serial", ()), ("xdist", ("-n", "3"))):
        (tmp_path / name).mkdir()
        runs[name] = run_suites(tmp_path / name, "--topology", str(topo), "-m", "metrics", *args)
    serial, side = runs["serial"], runs["xdist"]
    orders = [[c.key for c in load_run(run.junit).checks] for run in (serial, side)]
    assert serial.code == side.code == 0, side.output
    assert orders[0] == orders[1] and len(orders[0]) == 5, orders


@pytest.mark.parametrize("args,expected", [
    ([], ["-n", "3"]),                      # two clusters: one worker each, and one more
    (["-m", "logs"], ["-n", "3"]),
    (["-n", "0"], []),                      # the user's choice stands
    (["-n2"], []), (["--numprocesses=4"], []), (["-p", "no:xdist"], []), (["--dist=loadgroup"], []),
])
def test_the_run_waits_side_by_side_unless_told_otherwise(tmp_path, args, expected):
    topo = load_topology(write_topology(tmp_path, [
        {"name": "oke", "role": "primary", "provider": "endpoints", "services": {"prometheus": "http://127.0.0.1:1"}},
        {"name": "workstation", "role": "remote", "provider": "endpoints", "services": {"prometheus": "http://127.0.0.1:2"}},
    ]))
    assert workers(args, topo) == expected


def test_workers_are_capped(tmp_path):
    clusters = [{"name": "oke", "role": "primary", "provider": "endpoints", "services": {"prometheus": "http://127.0.0.1:1"}}]
    clusters += [{"name": f"r{i}", "role": "remote", "provider": "endpoints", "services": {"prometheus": "http://127.0.0.1:1"}}
                 for i in range(20)]
    assert workers([], load_topology(write_topology(tmp_path, clusters))) == ["-n", str(worker_cap())]


@pytest.mark.parametrize("cores, cap", [(1, 3), (2, 4), (4, 8), (64, MAX_WORKERS)])
def test_workers_are_two_per_core(monkeypatch, cores, cap):
    """Each worker's start (imports, collection) costs a core for a second or two; two per core keep the waits side
    by side without the starts queueing for the cores."""
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    assert worker_cap() == cap
