"""`python -m conformance [OPTIONS] [PYTEST ARGS]` (what `nox -s conformance` runs): the whole conformance run.

In order: clear reports/; refuse a bad topology, part, profile or pytest argument in one line
before anything is created; with kind clusters, bring them up; run the suites; with kind, collect
diagnostics on anything but PASS and delete the clusters unless --keep. Every ending writes
reports/junit.xml, summary.md, index.html and a history line; the exit status is the verdict's
(conformance/reports/model.py: PASS 0, FAIL 1, ERROR 4, INCOMPLETE 5).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from conformance.core.errors import ConfigError
from conformance.reports import write
from conformance.reports.model import EXIT_CODES, load_run
from conformance.reports.text import verdict_line
from conformance.core.topology import Topology, load_topology

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
DEFAULT_TOPOLOGY = ROOT / "kind" / "topology.yaml"
# Options that belong to the bring-up, not to pytest (the value-taking ones consume the next argument).
# --topology, --with and --profile go to both.
BRINGUP_FLAGS = ("--keep", "--preload")
BRINGUP_OPTIONS = ("--offline", "--cache-dir")
VALIDATE_TIMEOUT = 120  # seconds for pytest to read the arguments and collect (no check runs)
MAX_WORKERS = 8  # xdist workers: measured on 2 cores with 9 clusters (benchmarks/remotes.py), 12 and 16 were slower
WORKERS_PER_CORE = 2  # each worker starts by importing and collecting the suites: on 2 cores, 8 of them took 25.5 s
# of a healthy 8-remote run where 3 took 9.0 s; past the start the workers wait on I/O, so two per core keep up
USAGE = """\
usage: nox -s conformance -- [BRING-UP OPTIONS] [PYTEST OPTIONS]    (or: python -m conformance ...)

Runs the conformance suites against the clusters of the topology; with kind clusters, brings them up
first and deletes them after. Exit status: 0 PASS, 1 FAIL, 4 ERROR, 5 INCOMPLETE (see the README).

bring-up options (kind clusters only):
  --keep              leave the kind clusters up afterwards
  --preload           load the pinned images from the local Docker into the nodes
  --offline DIR       nothing from the network: charts, manifests and dashboards from DIR (implies --preload)
  --cache-dir DIR     where tools and kubeconfigs live (default ~/.cache/monitoring-conformance)
  --topology, --with and --profile are read by the bring-up and the suites alike.

  --markers           the suite's markers (what -m selects by) with their meaning; brings nothing up

The suites' own options and pytest's follow.
"""


@dataclass
class Arguments:
    """The run's arguments, split between the bring-up and pytest."""

    topology: str = str(DEFAULT_TOPOLOGY)
    parts: str = ""
    profile: str = ""
    bringup: list[str] = field(default_factory=list)
    pytest: list[str] = field(default_factory=list)
    help: bool = False
    markers: bool = False

    @property
    def keep(self) -> bool:
        return "--keep" in self.bringup

    @property
    def cache(self) -> list[str]:
        """Every provision command must see the same cluster state as `up`."""
        return self.bringup[self.bringup.index("--cache-dir"):][:2] if "--cache-dir" in self.bringup else []


def split_arguments(argv: list[str]) -> Arguments:
    """(topology, bring-up args, pytest args) from the command line."""
    args = Arguments()
    it = iter(argv)
    for arg in it:
        name, eq, value = arg.partition("=")
        if name == "--topology":
            args.topology = value if eq else next(it, args.topology)
            args.pytest.append(f"--topology={args.topology}")
        elif name == "--with":
            args.parts = value if eq else next(it, "")
            args.bringup += ["--with", args.parts]
            args.pytest.append(f"--with={args.parts}")
        elif name == "--profile":  # the stack profile (promtail, alloy, vector-opensearch): the bring-up and the suites alike
            args.profile = value if eq else next(it, "")
            args.bringup += ["--profile", args.profile]
            args.pytest.append(f"--profile={args.profile}")
        elif name in BRINGUP_FLAGS:
            args.bringup.append(arg)
        elif name in BRINGUP_OPTIONS:
            args.bringup += [name, value if eq else next(it, "")]
        elif arg in ("-h", "--help"):
            args.help = True
        elif arg == "--markers":  # the suite's markers, read from its configuration: nothing is brought up
            args.markers = True
        else:
            args.pytest.append(arg)
    return args


def selection(args: list[str]) -> dict[str, str]:
    """-m and -k as given, for the reports of a run that stops before pytest reads them."""
    found: dict[str, str] = {}
    it = iter(args)
    for arg in it:
        for flag, key in (("-m", "selection.markers"), ("-k", "selection.keywords")):
            if arg == flag:
                found[key] = next(it, "")
            elif arg.startswith(flag) and len(arg) > 2:
                found[key] = arg[2:].lstrip("=")
    return found


class Run:
    """One conformance run: its arguments, where its reports go, and how it ends."""

    def __init__(self, args: Arguments, reports: Path = REPORTS, out=sys.stderr) -> None:
        self.args = args
        self.reports = reports
        self.junit = reports / "junit.xml"
        self.out = out
        self.started = time.time()

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def stopped(self, step: str, reason: str) -> int:
        """End before the checks: one line, the reports with the ERROR verdict, exit 4."""
        props = {"topology": self.args.topology, **selection(self.args.pytest)}
        run = write.record_stopped(self.junit, step, reason, props, self.started)
        self.say(verdict_line(run))
        self.say(f"reports: {self.reports / 'summary.md'}, {self.reports / 'index.html'}")
        return EXIT_CODES["ERROR"]

    def python(self, *args: str, env: dict[str, str] | None = None, capture: bool = False,
               timeout: float | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=ROOT, env={**os.environ, **(env or {})}, text=True,
                              capture_output=capture, timeout=timeout)

    def topology(self) -> Topology:
        parts = [p for p in self.args.parts.split(",") if p]
        return load_topology(self.args.topology).with_parts(parts).with_profile(self.args.profile or None)

    def pytest_problem(self) -> str | None:
        """Let pytest read the arguments and collect, running nothing: its one-line refusal, or None."""
        try:
            done = self.python("-m", "pytest", "suites", "--collect-only", "-q", "-p", "no:cacheprovider",
                               *self.args.pytest, capture=True, timeout=VALIDATE_TIMEOUT)
        except subprocess.TimeoutExpired:
            return f"pytest did not finish reading the arguments within {VALIDATE_TIMEOUT} s"
        if done.returncode in (0, 5):  # 5: nothing selected; the run itself says INCOMPLETE
            return None
        lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        argparse_errors = [line.split(": error: ", 1)[1] for line in lines if ": error: " in line]
        if argparse_errors:  # pytest's own option parser: "__main__.py: error: unrecognized arguments: --x"
            return argparse_errors[-1]
        refusals = [line.removeprefix("ERROR: ") for line in lines if line.startswith(("ERROR:", "error:"))]
        errors = [line for line in lines if line.startswith("ERROR collecting") or line.startswith("E   ")]
        if refusals:
            return refusals[-1]
        if errors:
            return "the suites cannot be collected: " + " ".join(errors[:2])
        return f"pytest refused the arguments (exit {done.returncode}): {lines[-1] if lines else 'no output'}"

    def main(self) -> int:
        if self.args.help:
            print(USAGE)
            return self.python("-m", "pytest", "suites", "--help", "-p", "no:cacheprovider").returncode
        if self.args.markers:
            return self.python("-m", "pytest", "suites", "--markers", "-p", "no:cacheprovider").returncode
        write.clear(self.reports)
        try:
            topology = self.topology()
        except ConfigError as e:
            return self.stopped("topology", str(e))
        kind = any(c.provider == "kind" for c in topology.clusters)
        if kind:  # a bring-up takes many minutes: every argument is read before anything is created
            problem = self.pytest_problem()
            if problem:
                return self.stopped("arguments", problem)
            return self.with_kind(topology)
        return self.suites({}, topology)

    def provision(self, command: str, *extra: str, capture: bool = False) -> subprocess.CompletedProcess:
        return self.python("-m", "conformance.provision", command, "--topology", self.args.topology, *self.args.cache,
                           *extra, capture=capture)

    def with_kind(self, topology: Topology) -> int:
        where = self.provision("kubeconfig", capture=True).stdout or ""
        kubeconfig = next((line.split("=", 1)[1] for line in where.splitlines() if line.startswith("KUBECONFIG=")), "")
        env = {"KUBECONFIG": kubeconfig} if kubeconfig else {}
        try:
            up = self.provision("up", "--junit", str(self.junit), "--reports", str(self.reports), *self.args.bringup)
            if up.returncode != 0:
                step, reason = bringup_failure(self.junit)
                self.down()
                return self.stopped(step, reason)
            code = self.suites(env, topology)
            if code != EXIT_CODES["PASS"]:
                self.provision("diagnose", "--junit", str(self.junit), "--reports", str(self.reports))
                write.render(self.junit)  # again, now that junit.xml names the bundle
            return code
        finally:
            self.down()

    def down(self) -> None:
        """Delete the clusters this tool created (once), unless --keep."""
        if not self.args.keep and not getattr(self, "_down", False):
            self._down = True
            self.provision("down")

    def suites(self, env: dict[str, str], topology: Topology) -> int:
        """The suites themselves; pytest's exit status is the verdict's. A run that left no report is an ERROR."""
        code = self.python("-m", "pytest", "suites", f"--junitxml={self.junit}", *workers(self.args.pytest, topology),
                           *self.args.pytest, env=env).returncode
        if code not in EXIT_CODES.values() or not (self.reports / "summary.md").is_file():
            return self.stopped("run", f"pytest ended with exit status {code} without writing the reports (see above)")
        run = load_run(self.junit)
        if run.error:  # pytest refused an argument in one line and printed no closing block
            self.say(f"reports: {self.reports / 'summary.md'}, {self.reports / 'index.html'}")
        return run.exit_code


def workers(pytest_args: list[str], topology: Topology) -> list[str]:
    """xdist's options for the run unless the arguments choose: the checks wait side by side, one worker for each
    cluster and one more (each cluster's checks form a chain of waits; the primary's services serve them all),
    at most MAX_WORKERS and two per core (more only compete for the cores with what they wait on)."""
    chosen = any(a in ("-n", "--numprocesses", "--dist", "no:xdist") or a.startswith(("-n", "--numprocesses=", "--dist="))
                 for a in pytest_args)
    if chosen:
        return []
    return ["-n", str(min(worker_cap(), len(topology.clusters) + 1))]


def worker_cap() -> int:
    """The most xdist workers this machine runs well: two per core, at least three, at most MAX_WORKERS."""
    return min(MAX_WORKERS, max(3, WORKERS_PER_CORE * (os.cpu_count() or 1)))


def bringup_failure(junit: Path) -> tuple[str, str]:
    """The bring-up's failed phase and message, from the JUnit file it wrote (conformance/provision/junit.py)."""
    try:
        case = ET.parse(junit).getroot().find(".//testcase")
        failure = case.find("failure") if case is not None else None
        if case is not None and failure is not None:
            return f"bring-up ({case.get('name')})", failure.get("message") or "failed"
    except (OSError, ET.ParseError):
        pass
    return "bring-up", "failed before writing its report (see above)"


def main(argv: list[str] | None = None) -> int:
    return Run(split_arguments(sys.argv[1:] if argv is None else argv)).main()
