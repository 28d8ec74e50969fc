"""`python -m conformance.provision up|down|diagnose|kubeconfig|images`: errors are one line, never a traceback."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable, TextIO

from conformance.core.errors import ConfigError
from conformance.provision import diagnostics, junit, logs, network, preflight, tools
from conformance.provision.clusters import KindConfig, State
from conformance.provision.phases.images import preload_images
from conformance.provision.plan import Options, down_plan, up_plan, validate
from conformance.provision.run import Record, Runner, StepFailed, print_plan
from conformance.core.versions import VERSIONS_FILE, load_versions
from conformance.core.profiles import PROFILES
from conformance.core.topology import PARTS, load_topology

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TOPOLOGY = ROOT / "kind" / "topology.yaml"
DEFAULT_REPORTS = ROOT / "reports"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m conformance.provision",
                                description="Bring the kind clusters of a topology up or down.")
    p.add_argument("command", choices=("up", "down", "diagnose", "kubeconfig", "images"))
    p.add_argument("--topology", type=Path, default=DEFAULT_TOPOLOGY, help="topology file (default kind/topology.yaml)")
    p.add_argument("--dry-run", action="store_true", help="print the ordered plan and execute nothing")
    p.add_argument("--keep", action="store_true", help="leave clusters up after `nox -s conformance` (up never deletes)")
    p.add_argument("--preload", action="store_true", help="load the pinned images from the local docker into the nodes")
    p.add_argument("--with", dest="with_parts", default="", metavar="PART[,PART...]",
                   help="optional parts to install besides the topology's parts: (" + ", ".join(PARTS) + ")")
    p.add_argument("--profile", default="", metavar="PROFILE",
                   help="stack profile instead of the topology's profile: (" + ", ".join(PROFILES) + "; default promtail)")
    p.add_argument("--offline", type=Path, metavar="DIR",
                   help="download nothing: dashboards DIR/<key>.json, charts DIR/charts/<chart>-<version>.tgz, "
                        "Istio's Jaeger addon DIR/manifests/, images from the local docker (implies --preload)")
    p.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("MONITORING_CONFORMANCE_CACHE", tools.DEFAULT_CACHE)),
                   help="tools and cluster state (default ~/.cache/monitoring-conformance)")
    p.add_argument("--reports", type=Path, default=DEFAULT_REPORTS, help="trace.json and diagnostics/ go here")
    p.add_argument("--junit", type=Path, help="on failure, write a JUnit report here naming the failed phase")
    p.add_argument("--versions", type=Path, default=VERSIONS_FILE,
                   help="versions file to bring up (default stack/versions.yaml; `nox -s upgrade` passes the old pins)")
    # For tests: where preflight reads inotify limits, and the URL it probes for dashboards.
    p.add_argument("--proc", type=Path, default=Path("/proc"), help=argparse.SUPPRESS)
    p.add_argument("--grafana-url", default=preflight.GRAFANA_COM, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """Exit status: 0 done, 1 the bring-up failed (see the message), 2 bad input."""
    out = out or sys.stderr
    args = parser().parse_args(argv)
    try:
        topology = load_topology(args.topology).with_parts([p for p in args.with_parts.split(",") if p]).with_profile(
            args.profile or None)
        versions = load_versions(args.versions)
        opts = Options(topology=topology, versions=versions, cache_dir=args.cache_dir,
                       preload=args.preload, offline=args.offline)
        if args.command == "images":
            # For CI caches: pull and save these, then `up --preload` loads them into the nodes.
            print("\n".join(preload_images(versions, topology.profile)), file=sys.stdout)
            return 0
        if args.command == "kubeconfig":
            # Machine-readable for noxfile.py: nothing when there is no kind cluster to bring up.
            if any(c.provider == "kind" for c in topology.clusters):
                print(f"KUBECONFIG={kubeconfig_path(opts)}", file=sys.stdout)
            return 0
        if not any(c.provider == "kind" for c in topology.clusters):
            print(f"nothing to do: {args.topology} has no kind clusters", file=out)
            return 0
        if args.command == "up":
            return up(opts, args, out)
        if args.command == "down":
            return down(opts, args, out)
        bundle = diagnostics.collect(topology, State(args.cache_dir),
                                     tools.best_effort(versions.tools, args.cache_dir), args.reports)
        if args.junit:
            junit.annotate(args.junit, bundle)
        print(f"diagnostics bundle: {bundle}", file=out)
        return 0
    except ConfigError as e:
        print(f"error: {e}", file=out)
        if args.junit and args.command == "up":
            junit.write_failure(args.junit, "configuration", str(e), None)
        return 2
    except Exception as e:  # noqa: BLE001 - a bug must still leave a JUnit report and one line
        print(f"internal error in {args.command}: {type(e).__name__}: {e}", file=out)
        if args.junit and args.command == "up":
            junit.write_failure(args.junit, "bring-up", f"internal error: {type(e).__name__}: {e}", None)
        return 1


def kubeconfig_path(opts: Options) -> str:
    """KUBECONFIG for the suites: our kubeconfig of every kind cluster (contexts kind-<name>)."""
    state = State(opts.cache_dir)
    return os.pathsep.join(str(state.client_kubeconfig(c.name)) for c in opts.topology.clusters if c.provider == "kind")


def up(opts: Options, args: argparse.Namespace, out: TextIO) -> int:
    steps = up_plan(opts)
    fetches = plan_fetches(opts, steps)
    if args.dry_run:
        print_header(opts, fetches, out)
        print_plan(steps, out)
        return 0
    print(network_line(opts, fetches), file=out)
    runner = Runner({}, args.reports / "trace.json", out=out)
    configs = validate(opts)
    if not _phase(runner, "preflight", lambda: _preflight(configs, args, fetches, out), args, out):
        return 1
    resolved: dict[str, Path] = {}
    if not _phase(runner, "tools", lambda: resolved.update(tools.resolve_all(
                      opts.versions.tools, opts.cache_dir, say=lambda line: print(line, file=out),
                      offline=opts.offline is not None)),
                  args, out):
        return 1
    runner.tools = resolved
    try:
        runner.run(steps)
    except StepFailed as e:
        print(f"bring-up failed at {e.where}: {runner.redact(e.diagnosis)}", file=out)
        print("collecting diagnostics ...", file=out)
        bundle = diagnostics.collect(opts.topology, State(opts.cache_dir), resolved, args.reports, runner.facts)
        print(f"diagnostics bundle: {bundle}", file=out)
        if args.junit:
            junit.write_failure(args.junit, e.step.phase, f"{e.where}: {runner.redact(e.diagnosis)}", bundle)
        return 1
    print(f"clusters ready; for kubectl: export KUBECONFIG={kubeconfig_path(opts)}", file=out)
    return 0


def plan_fetches(opts: Options, steps: list) -> list[network.Fetch]:
    """What this plan downloads (network.fetches for these options)."""
    return network.fetches(steps, opts.versions, opts.topology.profile, offline=opts.offline is not None,
                           preload=opts.loads_images, images=preload_images(opts.versions, opts.topology.profile))


def network_line(opts: Options, fetches: list[network.Fetch]) -> str:
    """The plan's first line: the hosts it needs, or where an offline plan takes everything from."""
    if opts.offline is not None:
        return (f"offline: charts, manifests and dashboards from {opts.offline}, the node image and every image "
                f"from the local docker, tools from PATH or {opts.cache_dir} (nothing is downloaded)")
    return "needs the network: " + ", ".join(network.hosts(fetches))


def _preflight(configs: dict[str, KindConfig], args: argparse.Namespace, fetches: list[network.Fetch],
               out: TextIO) -> None:
    """The checks, after listing what the plan fetches; each host it needs is probed (grafana.com by its own check)."""
    host = preflight.Host(proc=args.proc, grafana_url=args.grafana_url)
    needs: dict[str, list[str]] = {}
    may_need: dict[str, list[str]] = {}
    if fetches:
        print(f"preflight: the plan fetches {len(fetches)} files from {len(network.hosts(fetches))} hosts:", file=out)
    for f in fetches:
        print(f"  - {f.line()}", file=out)
        if f.url != preflight.GRAFANA_COM:
            # A tool download is probed at its file: release downloads redirect to a CDN the plan needs as well.
            probe = f.url if f.is_download else f"https://{f.host}/"
            (may_need if f.only_if else needs).setdefault(probe, []).append(f.what)
    for warning in preflight.run(configs, host, offline=args.offline is not None, needs=needs, may_need=may_need):
        print(f"warning: {warning}", file=out)


def _phase(runner: Runner, name: str, fn: Callable[[], object], args: argparse.Namespace, out: TextIO) -> bool:
    """Run a phase that is not a plan step (preflight, tools); on failure report it like a step."""
    record = Record(name, None, name, "")
    runner.records.append(record)
    started = time.monotonic()
    try:
        fn()
    except (preflight.PreflightFailed, tools.ToolError) as e:
        record.status, record.seconds = "failed", time.monotonic() - started
        problems = e.problems if isinstance(e, preflight.PreflightFailed) else [str(e)]
        print(f"{name} failed:", file=out)
        for p in problems:
            print(f"  - {p}", file=out)
        runner.write_trace("failed", name, "; ".join(problems))
        if args.junit:
            junit.write_failure(args.junit, name, "; ".join(problems), None)
        return False
    record.status, record.seconds = "ok", time.monotonic() - started
    return True


def down(opts: Options, args: argparse.Namespace, out: TextIO) -> int:
    steps = down_plan(opts)
    if args.dry_run:
        print_plan(steps, out)
        return 0
    state = State(opts.cache_dir)
    if not state.owned([c.name for c in opts.topology.clusters if c.provider == "kind"]):
        print("nothing to delete: no cluster of this topology was created by this tool", file=out)
        return 0
    resolved = tools.best_effort(opts.versions.tools, opts.cache_dir)
    runner = Runner(resolved, args.reports / "trace-down.json", out=out)
    try:
        runner.run(steps)
    except StepFailed as e:
        print(f"down failed at {e.where}: {e.diagnosis}", file=out)
        return 1
    for c in opts.topology.clusters:
        note = runner.facts.get(f"{c.name}.skipped")
        if note:
            print(f"{c.name}: {note}", file=out)
    return 0


def print_header(opts: Options, fetches: list[network.Fetch], out: TextIO) -> None:
    """What --dry-run resolves before the steps: the network it needs, versions, where tools would come from."""
    v = opts.versions
    print(f"plan for {opts.topology.path} (dry run: nothing is executed); {network_line(opts, fetches)}", file=out)
    print(f"  node image {v.node_image} (Kubernetes {v.node_kubernetes}), Istio {v.istio}", file=out)
    charts = logs.charts_in_use(opts.topology, v.charts)
    print("  charts: " + ", ".join(f"{c.name} {c.version}" for c in [v.metallb, *charts]), file=out)
    prof = opts.topology.stack_profile
    print(f"  profile {prof.name}: {prof.summary}", file=out)
    if prof.name == "alloy":
        print(f"  loki image tag {v.apps.get('loki3')}, alloy image tag {v.apps.get('alloy')}", file=out)
    elif prof.name == "vector-opensearch":
        print(f"  opensearch image tag {v.apps.get('opensearch')}, opensearch-dashboards image tag "
              f"{v.apps.get('opensearch-dashboards')}, vector image tag {v.apps.get('vector')}", file=out)
    else:
        print(f"  loki image tag {v.loki_image_tag}", file=out)
    parts = opts.topology.parts.values()
    print("  optional parts: " + (", ".join(str(p) for p in parts) or "none (add them under parts: in the topology, "
                                  "or --with " + ",".join(PARTS) + ")"), file=out)
    for t in v.tools.values():
        print(f"  {t.name} {t.version}: from PATH if it reports that version, else "
              f"{tools.cached_path(t, opts.cache_dir)} (verified sha256)", file=out)
    print("  preflight: docker engine, memory, disk, host ports, inotify limits"
          + ("" if opts.offline else ", every host below reachable"), file=out)
    print(f"  fetches ({len(fetches)}):" + ("" if fetches else " nothing"), file=out)
    for f in fetches:
        print(f"    - {f.line()}", file=out)
