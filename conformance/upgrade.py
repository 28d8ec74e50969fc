"""`nox -s upgrade -- --from PATH`: bring up at the old pins, run the suites, upgrade, run them again, compare.

Each run's reports go to reports/upgrade/before/ and reports/upgrade/after/; the
side-by-side comparison to reports/upgrade/summary.md. Checks marked `upgrade`
(suites/test_upgrade.py) record state before and assert continuity after, through
reports/upgrade/state.json. Exit status: 0 when the run after the upgrade passed
every `must` check, 1 otherwise, 2 for bad input.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Callable, TextIO

from conformance.core.errors import ConfigError
from conformance.provision import cli, diagnostics, logs, tools
from conformance.provision.clusters import State
from conformance.provision.plan import Options
from conformance.provision.run import Runner, StepFailed, print_plan
from conformance.provision.upgrade_plan import changes, upgrade_plan
from conformance.core.versions import VERSIONS_FILE, load_versions
from conformance.reports import compare
from conformance.core.topology import load_topology

ROOT = Path(__file__).resolve().parents[1]
# (phase "before"/"after", junit path, versions file, state file) -> exit code of the suites.
SuitesRunner = Callable[[str, Path, Path, Path], int]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m conformance.upgrade",
                                description="Upgrade the stack from the pins in --from to the current pins, "
                                            "with the suites before and after.")
    p.add_argument("--from", dest="old", type=Path, required=True, metavar="PATH", help="versions file to start from")
    p.add_argument("--to", dest="new", type=Path, default=VERSIONS_FILE, metavar="PATH",
                   help="versions file to upgrade to (default stack/versions.yaml)")
    p.add_argument("--topology", type=Path, default=cli.DEFAULT_TOPOLOGY)
    p.add_argument("--to-profile", default="", metavar="PROFILE",
                   help="move the stack to this profile in the upgrade (promtail → alloy); default: the topology's")
    p.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("MONITORING_CONFORMANCE_CACHE", tools.DEFAULT_CACHE)))
    p.add_argument("--reports", type=Path, default=cli.DEFAULT_REPORTS)
    p.add_argument("--dry-run", action="store_true", help="print what changes and the upgrade steps; execute nothing")
    p.add_argument("--keep", action="store_true", help="leave the clusters up afterwards")
    p.add_argument("--preload", action="store_true")
    p.add_argument("--offline", type=Path, metavar="DIR")
    p.add_argument("--pytest", nargs=argparse.REMAINDER, default=[], help="arguments for both suite runs")
    p.add_argument("--proc", type=Path, default=Path("/proc"), help=argparse.SUPPRESS)
    p.add_argument("--grafana-url", default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None, out: TextIO | None = None, suites: SuitesRunner | None = None,
         clock: Callable[[], datetime] = logs.utc_now) -> int:
    out = out or sys.stderr
    args = parser().parse_args(argv)
    try:
        old, new = load_versions(args.old), load_versions(args.new)
        topology = load_topology(args.topology)
        target = topology.with_profile(args.to_profile or None)  # the stack after the upgrade
        opts = Options(topology=target, versions=new, cache_dir=args.cache_dir, preload=args.preload, offline=args.offline)
        now = clock()  # the printed changes' v13 date; the move computes its own as it is applied
        steps = upgrade_plan(opts, old, from_profile=topology.profile, clock=clock)
    except ConfigError as e:
        print(f"error: {e}", file=out)
        return 2
    folder = args.reports / "upgrade"
    moves = changes(old, new, topology.profile, target.profile, now)
    if not [m for m in moves if not m.startswith(NODE_IMAGE_NOTE)]:
        print(f"nothing to upgrade: {old.path} and {new.path} pin the same versions"
              + (f" for the {topology.profile} profile" if topology.profile else "")
              + "; no cluster is created or changed", file=out)
        return 0
    print(f"upgrade {old.path} → {new.path}:", file=out)
    for line in moves:
        print(f"  - {line}", file=out)
    titles = phase_titles(old.path, new.path)
    if args.dry_run:
        print_phases(titles, old.path, steps, args.keep, out)
        print_plan(steps, out, headers=True)
        return 0
    suites = suites or pytest_suites(args.topology, cli.kubeconfig_path(opts), args.pytest,
                                     after_profile=target.profile if target.profile != topology.profile else "")
    state = folder / "state.json"
    state.unlink(missing_ok=True)
    try:
        print(f"== {titles[0]}", file=out)
        if cli.main(["up", *_up_args(args, folder / "before"), "--versions", str(old.path)], out=out) != 0:
            print("bring-up at the old pins failed; nothing was upgraded", file=out)
            return 1
        print(f"== {titles[1]}", file=out)
        suites("before", folder / "before" / "junit.xml", old.path, state)
        print(f"== {titles[2]}", file=out)
        if not _upgrade(opts, steps, folder, out):
            return 1
        print(f"== {titles[3]}", file=out)
        code = suites("after", folder / "after" / "junit.xml", new.path, state)
        text = compare.render_files(folder / "before" / "junit.xml", folder / "after" / "junit.xml")
        (folder / "summary.md").write_text(text)
        print(text, file=out)
        return code  # the after-run's verdict (0 PASS, 1 FAIL, 4 ERROR, 5 INCOMPLETE)
    finally:
        if not args.keep:
            cli.main(["down", "--topology", str(args.topology), "--cache-dir", str(args.cache_dir),
                      "--reports", str(folder)], out=out)


NODE_IMAGE_NOTE = "kind node image stays"  # changes()' note on the node image: nothing the upgrade moves


def phase_titles(old: Path, new: Path) -> list[str]:
    """The four phases of `nox -s upgrade`, as the run announces them and the dry run lists them."""
    return [f"1/4 bring-up at the old pins ({old})", "2/4 suites before the upgrade", f"3/4 upgrade to {new}",
            "4/4 suites after the upgrade, compared with the run before"]


def print_phases(titles: list[str], old: Path, steps: list, keep: bool, out: TextIO) -> None:
    """The dry run's overview: each phase, the upgrade's step phases with their counts, then down or --keep."""
    counts: dict[str, int] = {}
    for s in steps:
        counts[s.phase] = counts.get(s.phase, 0) + 1
    moved = sum(1 for s in steps if s.title.startswith("upgrade ") and " → " in s.title)
    print("phases:", file=out)
    for i, title in enumerate(titles):
        detail = f": `nox -s up -- --versions {old} --dry-run` lists its steps" if i == 0 else ""
        if i == 2:
            detail = (f": the {len(steps)} steps below ({moved} moving a version), in phases "
                      + ", ".join(f"{p} ({n})" for p, n in counts.items()))
        print(f"  {title}{detail}", file=out)
    print("  then " + ("the clusters stay up (--keep)" if keep else "down: the clusters are deleted"), file=out)


def _up_args(args: argparse.Namespace, reports: Path) -> list[str]:
    extra = ["--topology", str(args.topology), "--cache-dir", str(args.cache_dir), "--reports", str(reports),
             "--junit", str(reports / "junit.xml"), "--proc", str(args.proc)]
    if args.grafana_url:
        extra += ["--grafana-url", args.grafana_url]
    if args.preload:
        extra.append("--preload")
    if args.offline:
        extra += ["--offline", str(args.offline)]
    return extra


def _upgrade(opts: Options, steps: list, folder: Path, out: TextIO) -> bool:
    """Run the upgrade steps with the tools of the new pins; on failure leave a diagnostics bundle."""
    try:
        resolved = tools.resolve_all(opts.versions.tools, opts.cache_dir, offline=opts.offline is not None)
    except tools.ToolError as e:
        print(f"upgrade failed: {e}", file=out)
        return False
    runner = Runner(resolved, folder / "trace-upgrade.json", out=out)
    try:
        runner.run(steps)
    except StepFailed as e:
        print(f"upgrade failed at {e.where}: {runner.redact(e.diagnosis)}", file=out)
        bundle = diagnostics.collect(opts.topology, State(opts.cache_dir), resolved, folder, runner.facts)
        print(f"diagnostics bundle: {bundle}", file=out)
        return False
    return True


def pytest_suites(topology: Path, kubeconfig: str, extra: list[str], after_profile: str = "") -> SuitesRunner:
    """The suites in a child pytest, as `nox -s conformance` runs them, for one phase of the upgrade
    (after a profile move, the run after it judges the new profile: `--profile`)."""
    def run(phase: str, junit: Path, pins: Path, state: Path) -> int:
        junit.parent.mkdir(parents=True, exist_ok=True)
        profile = [f"--profile={after_profile}"] if after_profile and phase == "after" else []
        command = [sys.executable, "-m", "pytest", str(ROOT / "suites"), f"--topology={topology}",
                   f"--junitxml={junit}", f"--pins={pins}", f"--upgrade-phase={phase}", f"--upgrade-state={state}",
                   *profile, *extra]
        env = {**os.environ, **({"KUBECONFIG": kubeconfig} if kubeconfig else {})}
        return subprocess.run(command, cwd=ROOT, env=env).returncode
    return run


if __name__ == "__main__":
    sys.exit(main())
