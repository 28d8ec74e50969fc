"""Time to verdict per broken hop, and a healthy run's figures, on the proving ground (loopback only).

    python benchmarks/bench.py [--timeout-scale 1] [--intervals stack|fast] [-k SUBSTRING] [--runs reports/bench.json]

Runs every row of the fault matrix (tests/test_fault_matrix.py: mesh, Kiali, dashboards), of the logs/metrics
table (tests/test_verdicts.py's rows, with the same knobs), and a row per area's service answering 404 or refusing
connections, each as the whole run of its markers at the real timeouts and the stack's intervals (30 s scrape, 5 s
send deadline: --intervals stack), side by side as `nox -s conformance` runs them (conformance/cli.py workers);
then healthy runs of both. Prints each row's time to verdict against its budget (issue 17: one hop broken 60 s,
a service answering 404 or refusing 90 s, a healthy `logs or metrics` run 20 s) and failing headlines, beside the
previous run's numbers (kept in reports/bench.json). A benchmark, not a test: it never fails on a time. Every
child run is bounded (run_suites' timeout).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from conformance.cli import workers  # noqa: E402
from conformance.core.topology import load_topology  # noqa: E402
from tests.proving_ground import FAST, STACK_TIMING  # noqa: E402
from tests.proving_stack import ProvingStack  # noqa: E402
from tests.suite_runner import SuiteRun, write_topology  # noqa: E402
from tests.test_fault_matrix import AREAS, FAULTS, Fault, headline, run_fault  # noqa: E402

# Issue 17's budgets, in seconds of the whole run (the child session's own time).
BUDGET_BROKEN_HOP, BUDGET_SERVICE_DOWN, BUDGET_HEALTHY = 60.0, 90.0, 20.0
EVERY_AREA = f"logs or metrics or {AREAS}"
SERVICES = ("prometheus", "loki", "grafana", "kiali")  # the primary's services every area's checks ask

LOGS_OR_METRICS = "logs or metrics"
# Issue 10's table, broken with the knobs tests/test_verdicts.py uses; its own rows replace these once merged.
ISSUE_TABLE = [
    Fault("remote Promtail labels cluster=workstatoin", LOGS_OR_METRICS,
          promtail_labels={"workstation": {"cluster": "workstatoin"}}),
    Fault("remote Promtail pushes to a port where nothing listens", LOGS_OR_METRICS,
          promtail_urls={"workstation": "closed"}),
    Fault("primary Prometheus without the remote-write receiver", LOGS_OR_METRICS, receiver=False),
    Fault("remote Prometheus remote_writes to a port where nothing listens", LOGS_OR_METRICS, refused_remote_write=True),
    Fault("primary Loki down", LOGS_OR_METRICS, loki_down=True),
    # The alloy profile's agent (FakeAlloy, Loki 3.7.6): its cause is read from Alloy's own counters.
    Fault("remote Alloy pushes to a port where nothing listens", LOGS_OR_METRICS,
          promtail_urls={"workstation": "closed"}, profile="alloy"),
]
KNOBS = ("receiver", "refused_remote_write", "promtail_labels", "promtail_urls", "loki_down")


def logs_metrics_rows() -> tuple[list[Fault], object]:
    """The logs/metrics rows and the topology they run with (the sender's log, where test_verdicts gives one)."""
    try:
        from tests import test_verdicts
    except ImportError:
        return ISSUE_TABLE, ProvingStack.topology
    merged = [Fault(f.name, LOGS_OR_METRICS, **{k: getattr(f, k) for k in KNOBS if hasattr(f, k)})
              for f in test_verdicts.FAULTS if f.name != "healthy"]
    names = {f.name for f in merged}
    topology = getattr(test_verdicts, "topology_with_sender_log", None)
    with_log = (lambda stack: topology(stack, stack.pair.remote)) if topology else ProvingStack.topology
    return merged + [f for f in ISSUE_TABLE if f.name not in names], with_log


def service_broken(service: str, how: str):
    """A topology writer: the stack's, with the primary's `service` at a URL that answers 404 or refuses."""
    def write(stack: ProvingStack) -> Path:
        path = stack.topology()
        doc = yaml.safe_load(path.read_text())
        services = doc["clusters"][0]["services"]
        url = services[service]["url"] if isinstance(services[service], dict) else services[service]
        broken = url.rstrip("/") + "/no-such-root" if how == "404" else f"http://127.0.0.1:{closed_port()}"
        services[service] = {**services[service], "url": broken} if isinstance(services[service], dict) else broken
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path
    return write


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_rows() -> list[tuple[Fault, object]]:
    """Every area's service answering 404 (a wrong web root) or refusing connections, one at a time."""
    return [(Fault(f"primary {service} answers 404", EVERY_AREA), service_broken(service, "404")) for service in SERVICES] + \
           [(Fault(f"primary {service} refuses connections", EVERY_AREA), service_broken(service, "refused"))
            for service in SERVICES]


def budget(fault: Fault) -> float:
    return BUDGET_SERVICE_DOWN if fault.name.startswith("primary ") and fault.markers == EVERY_AREA else BUDGET_BROKEN_HOP


def failing(run: SuiteRun) -> list[tuple[str, str, str]]:
    """(case, outcome, headline) of every case that did not pass, skip or find itself not applicable."""
    out = []
    for case in run.names():
        outcome = run.properties(case).get("outcome", "")
        if outcome not in ("passed", "skipped", "not_applicable", ""):
            out.append((case, outcome, headline(run.failure(case))))
    return out


def canary_after_queryable(run: SuiteRun, stack: ProvingStack) -> dict[str, float]:
    """Per cluster: the canary's verdict (its sighting) minus the moment its line became queryable in Loki.

    FakeLoki records that moment (Entry.visible_at) but exposes it only in its store, read here after the run.
    """
    queryable: dict[str, float] = {}
    with stack.loki._store_lock:
        for stream in stack.loki._streams.values():
            for entry in stream.entries:
                if "conformance-canary-" in entry.line:
                    queryable[stream.labels.get("cluster", "")] = entry.visible_at
    figures = {}
    for case in run.names():
        props = run.properties(case)
        if case.startswith("logs::log canary") and "log_canary_seen_at" in props:
            cluster = case.rsplit("[", 1)[-1].rstrip("]")
            if cluster in queryable:
                figures[cluster] = round(float(props["log_canary_seen_at"]) - queryable[cluster], 3)
    return figures


def healthy_figures(folder: Path, scale: float, topology, timing, extra) -> dict[str, object]:
    """One healthy run of each area set: their times, and the logs/metrics figures the issue's budgets name."""
    logs, stack = run_fault(folder / "healthy-logs", Fault("healthy", LOGS_OR_METRICS), scale, topology, timing, extra)
    areas, _ = run_fault(folder / "healthy-areas", Fault("healthy", AREAS), scale, timing=timing, extra=extra)
    props = {case: logs.properties(case) for case in logs.names()}
    propagation = {c.rsplit("[", 1)[-1].rstrip("]"): float(p["log_propagation_seconds"])
                   for c, p in props.items() if "log_propagation_seconds" in p}
    age = [float(p["remote_write_sample_age_seconds"]) for p in props.values() if "remote_write_sample_age_seconds" in p]
    return {
        "logs or metrics seconds": round(logs.suite_seconds, 1), "logs or metrics failing": len(failing(logs)),
        "logs or metrics budget seconds": BUDGET_HEALTHY,
        f"{AREAS} seconds": round(areas.suite_seconds, 1), f"{AREAS} failing": len(failing(areas)),
        "healthy failures": [f"{case} ({outcome}): {line[:200]}" for case, outcome, line in failing(logs) + failing(areas)],
        "log propagation seconds": propagation,
        "canary verdict after queryable seconds": canary_after_queryable(logs, stack),
        "remote sample age seconds": round(statistics.mean(age), 2) if age else None,
        "canary follow": sorted({p["log_canary_follow"] for p in props.values() if "log_canary_follow" in p}),
    }


def delta(now: float, before: float | None) -> str:
    return "" if before is None else f"{now - before:+.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout-scale", type=float, default=1.0, help="the runs' --timeout-scale (1: the real timeouts)")
    parser.add_argument("-k", dest="only", default="", help="only the rows whose name contains this")
    parser.add_argument("--runs", type=Path, default=ROOT / "reports" / "bench.json", help="this and the previous run's numbers")
    parser.add_argument("--intervals", choices=("stack", "fast"), default="stack",
                        help="the ground's Prometheus: the stack's 30 s scrape and 5 s send deadline, or the self-tests' 1 s")
    args = parser.parse_args(argv)
    timing = STACK_TIMING if args.intervals == "stack" else FAST
    previous = json.loads(args.runs.read_text()) if args.runs.is_file() else {}
    rows, topology = logs_metrics_rows()
    table = [(f, topology) for f in rows] + [(f, ProvingStack.topology) for f in FAULTS if f.name != "healthy"] + service_rows()
    table = [(f, t) for f, t in table if args.only.lower() in f.name.lower()]
    with tempfile.TemporaryDirectory() as tmp:  # the two-cluster ground: the workers `nox -s conformance` starts for it
        clusters = [{"name": n, "role": r, "provider": "endpoints", "services": {"prometheus": "http://127.0.0.1:1"}}
                    for n, r in (("oke", "primary"), ("workstation", "remote"))]
        extra = tuple(workers([], load_topology(write_topology(Path(tmp), clusters))))
    now: dict[str, object] = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "timeout_scale": args.timeout_scale,
                              "intervals": args.intervals, "workers": " ".join(extra),
                              # -k runs some rows: the others keep their previous numbers
                              "faults": dict(previous.get("faults") or {}) if args.only else {},
                              **({"healthy": previous["healthy"]} if args.only and "healthy" in previous else {})}
    print(f"time to the whole run's verdict (the child session's), timeout scale {args.timeout_scale:g}, "
          f"{args.intervals} intervals, {' '.join(extra) or 'serial'}"
          + (f"; previous run {previous.get('when')}" if previous else "; no previous run"))
    with tempfile.TemporaryDirectory(prefix="conformance-bench-") as tmp:
        for i, (fault, topo) in enumerate(table):
            try:
                run, _ = run_fault(Path(tmp) / f"fault-{i}", fault, args.timeout_scale, topo, timing, extra)
                seconds = run.suite_seconds
            except (RuntimeError, OSError, AssertionError) as e:  # the ground could not be set up: say so, go on
                print(f"\n{fault.name}: not measured, the proving ground failed: {e}")
                continue
            before = (previous.get("faults") or {}).get(fault.name, {}).get("seconds")
            rows_failing = failing(run)
            limit = budget(fault)
            now["faults"][fault.name] = {"seconds": round(seconds, 1), "budget": limit, "markers": fault.markers,
                                         "failing": [list(r) for r in rows_failing]}
            print(f"\n{fault.name}  [-m {fault.markers!r}]  {seconds:.1f} s of {limit:.0f} s "
                  f"{'within' if seconds <= limit else 'OVER'}"
                  + (f"  (previous {before:.1f} s, {delta(seconds, before)})" if before is not None else ""))
            for case, outcome, line in rows_failing:
                print(f"    {outcome:<12} {case}: {line[:220]}")
            if not rows_failing:
                print(f"    no check failed (exit {run.code})")
        if not args.only or args.only.lower() in "healthy":
            figures = healthy_figures(Path(tmp), args.timeout_scale, topology, timing, extra)
            now["healthy"] = figures
            print("\nhealthy runs")
            for key, value in figures.items():
                was = (previous.get("healthy") or {}).get(key)
                print(f"    {key}: {value}" + (f"  (previous {was})" if was is not None and was != value else ""))
    args.runs.parent.mkdir(parents=True, exist_ok=True)
    args.runs.write_text(json.dumps(now, indent=2) + "\n")
    print(f"\nnumbers kept in {args.runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
